"""The marketplace gateways of the sandbox for the ingest benchmark, in their own process.

`python bench/ingest_sandbox.py HOME --orders N --days D --seed S` streams N generated orders
(all on the six marketplaces) into the six gateways, serves them on loopback, writes
`HOME/sandbox.json` (the connectors' credentials file) and prints `ready`; it serves until its
stdin closes. Unlike `sandbox.server.Sandbox` it builds no merchant-side records (WMS, tracking,
CS...), which a million-order world would not need here and would not fit in memory beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sandbox.gateways import GATEWAYS
from sandbox.model import MARKETPLACES
from sandbox.server import serve_app
from sandbox.world import iter_orders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("home", type=Path)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    began = time.monotonic()
    gateways = {channel: GATEWAYS[channel]() for channel in MARKETPLACES}
    items, firsts = 0, []
    for chunk in iter_orders(args.seed, args.orders, args.days, channels=MARKETPLACES):
        items += sum(len(o.items) for o in chunk)
        firsts.append(min(o.created_at for o in chunk))
        for gateway in gateways.values():
            gateway.add_orders(chunk)
    apps = {channel: serve_app(gateway.app, channel) for channel, gateway in gateways.items()}
    document = {
        "channels": {
            channel: {"base_url": apps[channel].base_url, **gateway.credentials}
            for channel, gateway in gateways.items()
        },
        "generated": {
            "orders": args.orders,
            "items": items,
            # a world of `days` has orders created before them (closed unpaid, slow payers)
            "earliest_created_at": min(firsts).isoformat(),
            "per_channel": {c: len(g.store) for c, g in gateways.items()},
            "seconds": round(time.monotonic() - began, 1),
        },
    }
    args.home.mkdir(parents=True, exist_ok=True)
    path = args.home / "sandbox.json"
    path.write_text(json.dumps(document, indent=1))
    path.chmod(0o600)
    print("ready", flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin (or dies)
    for app in apps.values():
        app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
