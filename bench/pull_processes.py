"""Benchmark: marketplace pulls in the run's process vs in processes of their own, one run.

    python bench/pull_processes.py [--orders 20000] [--channels jd,taobao] [--rounds 2]
                                   [--busy]

Starts a warehouse (the embedded PostgreSQL of a scratch ORDERPULSE_HOME, or
ORDERPULSE_BENCH_PG_URL) and the sandbox's gateways in their own process with N orders over one
day, then pulls the channels into a fresh database each time, round after round:
- `here`: one after another in this process (`connectors.ingest.ingest_channel`), as every
  pull ran before connectors/pull_process.py;
- `process`: one after another, each in a process of its own (`pull_in_process`);
- `2 processes`: two at once, each in a process of its own, as a run's pulls now go.
`--busy` keeps a thread of this process busy 30 ms out of every 50 (the run's other steps:
Great Expectations, dagster-dbt reading dbt's events). Prints orders/s of each way and the
ratio to `here`; writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg
from ingest_raw import start_sandbox, warehouse

from connectors.ingest import ingest_channel
from connectors.marketplace import open_client
from connectors.pull_process import PullJob, pull_in_process
from connectors.raw_schema import ensure_raw_tables
from orchestration.threaded_executor import SWITCH_INTERVAL_SECONDS


def _job(url: str, sandbox_file: Path, channel: str) -> PullJob:
    return PullJob(
        channel=channel,
        warehouse_url=url,
        sandbox_file=sandbox_file,
        run_id="bench",
        backfill_days=2,
        settle=timedelta(0),  # the sandbox's world ends before now
        http_timeout=30,
    )


def _here(job: PullJob) -> int:
    with (
        open_client(job.channel, job.sandbox_file, timeout=job.http_timeout, environ={}) as client,
        psycopg.connect(job.warehouse_url) as conn,
    ):
        client.settle = job.settle
        report = ingest_channel(
            conn, client, lag=job.lag, backfill_days=job.backfill_days, run_id=job.run_id
        )
    return report.inserted


def _two_at_once(jobs: list[PullJob]) -> int:
    with ThreadPoolExecutor(2) as pool:
        return sum(report.inserted for report in pool.map(pull_in_process, jobs))


def _busy() -> None:
    while True:
        began = time.perf_counter()
        while time.perf_counter() - began < 0.03:
            sum(range(500))
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--channels", default="jd,taobao")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--busy", action="store_true", help="a busy thread beside the pulls")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # as a run's process does
    if args.busy:
        threading.Thread(target=_busy, daemon=True).start()
    scratch = Path(tempfile.mkdtemp(prefix="op-bench-pulls-"))
    home = scratch / "home"
    sandbox = start_sandbox(scratch / "sandbox", args.orders, 1, args.seed)
    sandbox_file = scratch / "sandbox" / "sandbox.json"
    ways = {
        "here": lambda jobs: sum(_here(j) for j in jobs),
        "process": lambda jobs: sum(pull_in_process(j).inserted for j in jobs),
        "2 processes": _two_at_once,
    }
    rates: dict[str, list[float]] = {way: [] for way in ways}
    try:
        for round_no in range(1, args.rounds + 1):
            for way, pull in ways.items():
                db = warehouse(home)
                with psycopg.connect(db.url()) as conn:
                    ensure_raw_tables(conn, channels)
                jobs = [_job(db.url(), sandbox_file, channel) for channel in channels]
                began = time.perf_counter()
                orders = pull(jobs)
                seconds = time.perf_counter() - began
                rates[way].append(round(orders / seconds))
                print(
                    f"round {round_no}  {way:<12} {orders:>7,} orders in {seconds:6.1f} s "
                    f"= {orders / seconds:7,.0f} orders/s",
                    flush=True,
                )
    finally:
        sandbox.stdin.close()
        sandbox.wait(timeout=60)
    print()
    base = max(rates["here"])
    for way, figures in rates.items():
        best = max(figures)
        print(f"{way:<12} best {best:>7,} orders/s  ({best / base:.2f} x here)  runs {figures}")
    if args.out:
        payload = {"orders": args.orders, "channels": channels, "busy": args.busy}
        args.out.write_text(json.dumps({**payload, "orders_per_s": rates}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
