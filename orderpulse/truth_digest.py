"""The sandbox's truth file cut down to what the demo's summary reads, parsed in a process of
its own.

At 1,000,000 orders `truth.json` is 158 MB and parsed whole holds ~670 MiB (~960 MiB while
parsing): read in the demo's process after the run, it took that process from 1,707 MiB (the
run's peak) to 2,043 MiB. The summary needs only each channel's order count and paid total and
the orders that carry a label; the rest (incidents, risk feedback, deliveries) is small.

    python -m orderpulse.truth_digest TRUTH_JSON   # prints the digest as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

CHANNEL_TOTALS = "channel_totals"


def digest(truth: dict[str, Any]) -> dict[str, Any]:
    """`truth` with `orders` reduced to the labelled ones (channel, number, labels) and
    `channel_totals`: channel -> [orders, paid total as a decimal string]."""
    totals: dict[str, list] = {}
    labelled = []
    for order in truth.get("orders", []):
        channel = order["channel"]
        count, paid = totals.get(channel, (0, Decimal("0")))
        totals[channel] = [count + 1, paid + Decimal(order["paid_amount"])]
        if order.get("labels"):
            labelled.append(
                {
                    "channel": channel,
                    "platform_order_no": order["platform_order_no"],
                    "labels": order["labels"],
                }
            )
    rest = {key: value for key, value in truth.items() if key != "orders"}
    return {
        **rest,
        "orders": labelled,
        CHANNEL_TOTALS: {ch: [n, str(paid)] for ch, (n, paid) in totals.items()},
    }


def read_digest(path: Path, timeout: float = 600.0) -> dict[str, Any]:
    """The digest of the truth file at `path`, made by a child interpreter (its memory is
    returned to the system when it exits)."""
    done = subprocess.run(
        [sys.executable, "-m", "orderpulse.truth_digest", str(path)],
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    return json.loads(done.stdout)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m orderpulse.truth_digest TRUTH_JSON", file=sys.stderr)
        return 2
    truth = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.stdout.write(json.dumps(digest(truth)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
