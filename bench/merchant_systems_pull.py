"""The merchant-systems pull alone: `connectors.merchant_systems.ingest_merchant_systems` over a
sandbox world of N orders (default 20,000), its API served in a thread of this process (as
`orderpulse demo` serves it: one process, one GIL), over a non-autocommit connection (as the
Dagster asset's), into a fresh database of a scratch
ORDERPULSE_HOME's embedded PostgreSQL. Prints rows and seconds per table, then re-runs (a
no-op) and prints that too.

    .venv/bin/python bench/merchant_systems_pull.py [--orders 20000] [--days 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # PYTHONPATH may put another connectors first (before/after)
    sys.path.append(str(ROOT))

from connectors.http import make_http_client  # noqa: E402
from connectors.merchant_systems import (  # noqa: E402
    SOURCES,
    ensure_merchant_systems_tables,
    ingest_source,
)
from kernel.database import PgConn, ensure_database  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread  # noqa: E402
from sandbox.world import generate_world  # noqa: E402

TOKEN = "bench-merchant-systems-token"
END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # pinned: the same world every run


def scratch_database(home: Path) -> PgConn:
    server = ensure_database(Settings(home=home, pg_url=None))
    name = f"bench_ms_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    db = PgConn(server.host, server.port, server.user, server.password, name)
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute("create schema raw")
    return db


def pull(conn: psycopg.Connection, base_url: str) -> dict[str, dict[str, float]]:
    """Rows received and seconds per table of one full pull."""
    ensure_merchant_systems_tables(conn)
    out = {}
    with make_http_client() as http:
        for source in SOURCES:
            began = time.perf_counter()
            stats = ingest_source(conn, http, base_url, SecretStr(TOKEN), source)
            out[source.table] = {
                "rows": stats.received,
                "seconds": round(time.perf_counter() - began, 2),
            }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--autocommit", action="store_true", help="an autocommit connection")
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="op-ms-")) / "home"
    began = time.perf_counter()
    world = generate_world(seed=args.seed, orders=args.orders, days=args.days, end=END)
    print(f"world of {args.orders:,} orders in {time.perf_counter() - began:.1f} s", flush=True)
    server = serve_in_thread(build_merchant_systems_app(world, TOKEN, clock=lambda: END))
    db = scratch_database(home)
    profiler = cProfile.Profile() if args.profile else None
    try:
        # a plain connection, as the Dagster asset passes (`--autocommit` for the other kind)
        with psycopg.connect(db.url(), autocommit=args.autocommit) as conn:
            if profiler:
                profiler.enable()
            began, cpu = time.perf_counter(), time.process_time()
            first = pull(conn, server.base_url)
            first_s = time.perf_counter() - began
            first_cpu = time.process_time() - cpu  # client and API threads, not PostgreSQL
            if profiler:
                profiler.disable()
            began = time.perf_counter()
            pull(conn, server.base_url)
            again_s = time.perf_counter() - began
    finally:
        server.stop()
    rows = sum(t["rows"] for t in first.values())
    print(f"\n{'table':<20}{'rows':>10}{'seconds':>10}{'rows/s':>10}")
    for table, t in first.items():
        rate = t["rows"] / t["seconds"] if t["seconds"] else 0
        print(f"{table:<20}{t['rows']:>10,}{t['seconds']:>10.2f}{rate:>10,.0f}")
    print(f"{'pull':<20}{rows:>10,}{first_s:>10.2f}{rows / first_s:>10,.0f}")
    print(f"CPU of this process (client + API server threads): {first_cpu:.1f} s")
    print(f"re-run (no-op): {again_s:.2f} s; peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")  # fmt: skip
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    if args.out:
        args.out.write_text(json.dumps({
            "orders": args.orders, "rows": rows, "pull_seconds": round(first_s, 2),
            "process_cpu_seconds": round(first_cpu, 1),
            "rows_per_s": round(rows / first_s), "rerun_seconds": round(again_s, 2),
            "tables": first,
        }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
