"""Push latency: from a platform's push message to the order in `raw`, under Dagster.

Starts what `orderpulse up` starts minus the web UI: the warehouse, the webhook receiver, the
live sandbox (new orders every 2 s, each change pushed, signed, to the receiver) and the Dagster
daemon, whose push sensors turn stored messages into in-process runs that fetch the named
orders and load them. After `--seconds`, it reads `raw.webhook_events`: a message's latency is
`processed_at - received_at` (processed is stamped right after its orders are loaded).

Reference, measured in the same run: the same work without Dagster (detail calls for a batch of
pushed orders + the raw load), i.e. the floor a run cannot beat.

    .venv/bin/python bench/push_latency.py --seconds 120
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _direct_reference(home: Path, url: str, samples: int = 10) -> list[float]:
    """fetch_orders + load_orders for recently pushed orders, outside Dagster."""
    from connectors.credentials import load_credentials
    from connectors.http import make_http_client
    from connectors.marketplace import build_client
    from connectors.raw_loader import load_orders

    timings = []
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select channel, order_nos from raw.webhook_events order by id desc limit %s",
            [samples],
        ).fetchall()
        http = make_http_client()
        try:
            for channel, nos in rows:
                client = build_client(
                    channel, load_credentials(channel, home / "sandbox.json"), http
                )
                began = time.perf_counter()
                orders = client.fetch_orders(nos)
                load_orders(conn, channel, orders, run_id="bench-direct")
                timings.append(time.perf_counter() - began)
        finally:
            http.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="how long the live sandbox runs")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    console = Console()

    home = args.home or Path(tempfile.mkdtemp(prefix="op_push_"))
    os.environ["ORDERPULSE_HOME"] = str(home)
    from kernel import runtime
    from kernel.settings import Settings

    warehouse = runtime.prepare(Settings(home=home))
    from orderpulse.services import start_services

    services = start_services(console, home=home, live=True)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    console.print(f"daemon and live sandbox running for {args.seconds}s (home {home})")
    try:
        time.sleep(args.seconds)
        daemon.terminate()
        daemon.wait(timeout=60)
        direct = _direct_reference(home, warehouse.url())  # the sandbox still serves
    finally:
        if daemon.poll() is None:
            daemon.kill()
        services.stop()

    with psycopg.connect(warehouse.url()) as conn:
        rows = conn.execute(
            "select extract(epoch from processed_at - received_at)::float8 "
            "from raw.webhook_events where processed_at is not null "
            "and received_at > (select min(received_at) + interval '30 seconds' "
            "from raw.webhook_events)"  # skip the start-up burst
        ).fetchall()
        pending = conn.execute(
            "select count(*) from raw.webhook_events where processed_at is null"
        ).fetchone()[0]
    latencies = [r[0] for r in rows]
    table = Table(title=f"push message -> order in raw ({args.seconds}s live run)")
    for col in ("path", "messages", "p50 s", "p90 s", "max s"):
        table.add_column(col, justify="right" if col != "path" else "left")
    if latencies:
        table.add_row(
            "Dagster push sensor (run if >200 orders)",
            str(len(latencies)),
            f"{statistics.median(latencies):.1f}",
            f"{_percentile(latencies, 0.9):.1f}",
            f"{max(latencies):.1f}",
        )
    if direct:
        table.add_row(
            "reference: fetch + load, no Dagster",
            str(len(direct)),
            f"{statistics.median(direct):.2f}",
            f"{_percentile(direct, 0.9):.2f}",
            f"{max(direct):.2f}",
        )
    console.print(table)
    console.print(f"messages still pending at the end: {pending}")
    if args.out:
        figures = {"seconds": args.seconds, "pending_at_end": pending}
        for name, values in (("dagster", latencies), ("reference", direct or [])):
            if values:
                figures[name] = {
                    "messages": len(values),
                    "p50_s": statistics.median(values),
                    "p90_s": _percentile(values, 0.9),
                    "max_s": max(values),
                }
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
