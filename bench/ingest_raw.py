"""Benchmark: ingest N orders (default 1,000,000) from the sandbox's six marketplace gateways into
`raw`, and compare the raw load's rate with `psql \\copy` of the very same rows, in one run.

    python bench/ingest_raw.py [--orders 1000000] [--days 3] [--channels taobao,jd,...]

What it does:
1. starts a warehouse (the embedded PostgreSQL of a scratch ORDERPULSE_HOME, or
   ORDERPULSE_BENCH_PG_URL) and a fresh database in it;
2. starts `bench/ingest_sandbox.py` in its own process (the gateways' memory is not ours) with
   N orders spread over the six marketplaces;
3. runs `connectors.ingest.ingest_channel` for each channel over real HTTP (signed calls, list +
   detail + batch decrypt, paging), timing every `load_orders` call (COPY into a temp table +
   upsert + cursor) apart from the HTTP work;
4. right after each channel, exports its loaded rows to CSV and times `psql \\copy` of them into
   an empty table of the same shape (primary key and index included);
5. loads a sample of the same rows (--reference-rows) the ways a user would write instead:
   `pandas.DataFrame.to_sql` (into a table as pandas makes it, and into one of the raw
   table's shape) and a dlt pipeline (bench/load_references.py);
6. prints rows/s of the raw load, of `\\copy`, of to_sql and dlt, the ratios, the end-to-end
   rate and the peak memory (max RSS) of this process, and writes them as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import load_references
import psycopg

import connectors.ingest as ingest_module
from connectors.channels_config import marketplaces
from connectors.credentials import load_credentials
from connectors.http import RetryPolicy, make_http_client
from connectors.marketplace import build_client
from connectors.raw_loader import load_orders
from connectors.raw_schema import ensure_raw_tables
from kernel.database import PgConn, ensure_database, psql_path
from kernel.settings import Settings

REPO = Path(__file__).resolve().parents[1]


class LoadTimer:
    """Wraps `load_orders` to add up the time and rows of the raw load alone."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows = 0
        self.calls = 0

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        began = time.perf_counter()
        stats = load_orders(*args, **kwargs)
        self.seconds += time.perf_counter() - began
        self.rows += stats.received
        self.calls += 1
        return stats


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def warehouse(home: Path) -> PgConn:
    url = os.environ.get("ORDERPULSE_BENCH_PG_URL")
    server = ensure_database(Settings(home=home, pg_url=url))
    name = f"bench_ingest_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    db = PgConn(server.host, server.port, server.user, server.password, name)
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute("create schema raw")
        conn.execute("create schema bench")
    return db


def start_sandbox(home: Path, orders: int, days: int, seed: int) -> subprocess.Popen:
    sandbox = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "ingest_sandbox.py"), str(home),
         "--orders", str(orders), "--days", str(days), "--seed", str(seed)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    line = sandbox.stdout.readline().strip()
    if line != "ready":
        sandbox.kill()
        raise SystemExit(f"the sandbox did not start (said {line!r})")
    return sandbox


def psql_copy(db: PgConn, channel: str, scratch: Path) -> tuple[int, float]:
    """Rows and seconds of `psql \\copy` of `channel`'s loaded rows into an empty table of the
    same shape (primary key and index included)."""
    psql = str(psql_path())
    env = {**os.environ, "PGPASSWORD": db.password}
    base = [psql, "-h", db.host, "-p", str(db.port), "-U", db.user, "-d", db.dbname]
    base += ["-v", "ON_ERROR_STOP=1"]
    csv = scratch / f"{channel}.csv"
    subprocess.run(
        [*base, "-c", f"\\copy raw.{channel}_orders to '{csv}' csv"],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute(
            f"create table bench.{channel}_orders (like raw.{channel}_orders including all)"
        )
    began = time.perf_counter()
    out = subprocess.run(
        [*base, "-c", f"\\copy bench.{channel}_orders from '{csv}' csv"],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    csv.unlink()
    return int(out.stdout.split()[-1]), seconds  # psql says "COPY <n>"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )  # noqa: E501
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--channels", default=",".join(marketplaces()))
    parser.add_argument("--batch-rows", type=int, default=ingest_module.BATCH_ROWS)
    parser.add_argument("--workers", type=int, default=8, help="parallel detail/decrypt calls")
    parser.add_argument(
        "--reference-rows", type=int, default=100_000,
        help="rows loaded by to_sql and dlt for the references (0: none)",
    )  # fmt: skip
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]

    scratch = Path(tempfile.mkdtemp(prefix="op-bench-"))
    home = args.home or scratch / "home"
    began = time.monotonic()
    db = warehouse(home)
    sandbox = start_sandbox(scratch / "sandbox", args.orders, args.days, args.seed)
    sandbox_file = scratch / "sandbox" / "sandbox.json"
    generated = json.loads(sandbox_file.read_text())["generated"]
    # back to the world's first order: a world of `days` holds orders created before them
    span = datetime.now(UTC) - datetime.fromisoformat(generated["earliest_created_at"])
    backfill_days = max(args.days + 1, math.ceil(span / timedelta(days=1)))
    print(
        f"sandbox: {args.orders:,} orders ({generated['items']:,} items) over {args.days} days "
        f"generated in {generated['seconds']} s; per channel {generated['per_channel']}",
        flush=True,
    )

    timer = LoadTimer()
    ingest_module.load_orders = timer  # measure the raw load apart from the HTTP work
    policy = RetryPolicy(attempts=8)
    reports = {}
    copy_rows, copy_seconds, ingest_seconds = 0, 0.0, 0.0
    ingest_began = time.monotonic()
    try:
        with (
            make_http_client(timeout=30, policy=policy, workers=args.workers) as http,
            psycopg.connect(db.url()) as conn,
        ):
            ensure_raw_tables(conn, channels)
            for channel in channels:
                creds = load_credentials(channel, sandbox_file, environ={})
                client = build_client(channel, creds, http)
                client.settle = timedelta(0)  # the sandbox's world ends before now
                t0 = time.monotonic()
                report = ingest_module.ingest_channel(
                    conn, client, lag=timedelta(0), backfill_days=backfill_days,
                    run_id="bench", batch_rows=args.batch_rows,
                )  # fmt: skip
                reports[channel] = report
                seconds = time.monotonic() - t0
                # \copy of the same rows right away, so both rates see the same machine load
                rows, copy_s = psql_copy(db, channel, scratch)
                copy_rows, copy_seconds = copy_rows + rows, copy_seconds + copy_s
                ingest_seconds -= time.monotonic() - t0 - seconds
                print(
                    f"{channel:<9} {report.inserted:>9,} orders in {seconds:7.1f} s "
                    f"({report.pages:,} pages, {report.calls.get('calls', 0):,} calls, "
                    f"\\copy {rows / copy_s:,.0f} rows/s, peak RSS {peak_rss_mib():,.0f} MiB)",
                    flush=True,
                )
        ingest_seconds += time.monotonic() - ingest_began
    finally:
        sandbox.stdin.close()
        sandbox.wait(timeout=60)

    loaded = sum(r.inserted for r in reports.values())
    ingest_peak_mib = peak_rss_mib()  # before the references read their rows into pandas
    references = {}
    if args.reference_rows > 0:
        frame = load_references.sample(db, channels, args.reference_rows)
        references["to_sql"] = load_references.to_sql_rate(db, frame)
        references["to_sql_keyed"] = load_references.to_sql_keyed_rate(db, frame)
        references["dlt"] = load_references.dlt_rate(db, frame, str(scratch / "dlt"))
        for name, figures in references.items():
            print(f"reference {name}: {figures}", flush=True)
    result = {
        "orders": args.orders,
        "items": generated["items"],
        "loaded": loaded,
        "raw_load_rows_per_s": round(timer.rows / timer.seconds),
        "raw_load_seconds": round(timer.seconds, 2),
        "raw_load_calls": timer.calls,
        "psql_copy_rows_per_s": round(copy_rows / copy_seconds),
        "psql_copy_seconds": round(copy_seconds, 2),
        "ratio_to_copy": round((timer.rows / timer.seconds) / (copy_rows / copy_seconds), 3),
        "end_to_end_rows_per_s": round(loaded / ingest_seconds),
        "ingest_seconds": round(ingest_seconds, 1),
        "peak_rss_mib": round(ingest_peak_mib),
        "references": references,
        "total_seconds": round(time.monotonic() - began, 1),
    }
    print()
    for label, value in (
        ("raw load (COPY to temp + upsert + cursor)", f"{result['raw_load_rows_per_s']:,} rows/s"),
        ("psql \\copy of the same rows", f"{result['psql_copy_rows_per_s']:,} rows/s"),
        ("raw load / \\copy", f"{result['ratio_to_copy']:.2f}"),
        ("end to end (HTTP + decrypt + load)", f"{result['end_to_end_rows_per_s']:,} rows/s"),
        ("peak memory of the ingest process", f"{result['peak_rss_mib']:,} MiB"),
    ):
        print(f"{label:<44}{value:>16}")
    raw_rate = timer.rows / timer.seconds
    for name, figures in references.items():
        if "rows_per_s" in figures:
            ratio = result[f"ratio_to_{name}"] = round(raw_rate / figures["rows_per_s"], 2)
            label = f"{name} ({figures['rows']:,} of the same rows)"
            print(f"{label:<44}{figures['rows_per_s']:>11,} rows/s  (raw load {ratio}x)")
        else:
            print(f"{name:<44}{figures.get('skipped', '')}")
    if loaded != args.orders:
        print(f"WARNING: loaded {loaded:,} of {args.orders:,} orders")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0 if loaded == args.orders else 1


if __name__ == "__main__":
    sys.exit(main())
