"""Push latency: from a platform's push message to the order in `raw`, and on to its routing
decision and risk score, under Dagster.

Starts what `orderpulse up` starts minus the web UI: the warehouse, the webhook receiver, the
live sandbox (new orders every 2 s, each change pushed, signed, to the receiver) and the Dagster
daemon, whose push sensors turn stored messages into in-process runs that fetch the named
orders and load them, and declarative automation (the same daemon) rebuilds dbt and runs the
decisions. After `--seconds`, it reads `raw.webhook_events`: a message's latency is
`processed_at - received_at` (processed is stamped right after its orders are loaded). Push ->
decision: the tables keep an order's latest decision only, so the benchmark reads every new
`decided_at` (`assessed_at`) once a second while it runs; a decision's latency is the time from
the order's last push received before it (the push that set the chain going: an order's first
push is often "created", its decision follows a later "paid") to the decision, counted for the
first decision after a push. A decision with no push of its order since the order's previous
decision (risk re-scores an order when another order of its buyer or device arrives) answered
no push of its own: it is counted apart, as re-decided. Beside it the old figure, from the
tables alone: the latest decision of each order against its last push before it.

Reference, measured in the same run: the same work without Dagster (detail calls for a batch of
pushed orders + the raw load), i.e. the floor a run cannot beat.

    .venv/bin/python bench/push_latency.py --seconds 540 --warmup 240
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
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


# every push of an order after the warm-up
PUSHES = """
with pushes as (
    select channel, unnest(order_nos) as platform_order_no, received_at
    from raw.webhook_events
    where received_at > (select min(received_at) + make_interval(secs => %(warmup)s)
                         from raw.webhook_events)
)"""
# every decision of one kind seen while the benchmark ran, with the order's decision before it
DECISIONS = (
    PUSHES
    + """,
decisions as (
    select channel, platform_order_no, at,
           lag(at) over (partition by channel, platform_order_no order by at) as previous
    from seen_decisions
    where decision = %(decision)s
)"""
)
# from the order's last push received since its previous decision to the decision; decisions
# with no such push are re-decisions
SEEN_LATENCY = (
    DECISIONS
    + """,
answered as (
    select d.channel, d.platform_order_no, d.at, max(p.received_at) as pushed
    from decisions d
    join pushes p using (channel, platform_order_no)
    where p.received_at <= d.at and (d.previous is null or p.received_at > d.previous)
    group by d.channel, d.platform_order_no, d.at
)
select extract(epoch from at - pushed)::float8 from answered
"""
)
REDECIDED = (
    DECISIONS
    + """
select count(*)
from decisions d
where d.previous is not null
  and not exists (
      select from pushes p
      where (p.channel, p.platform_order_no) = (d.channel, d.platform_order_no)
        and p.received_at > d.previous and p.received_at <= d.at
  )
"""
)
DECISION_TABLES = (
    ("routing", "ops.routing_decisions", "decided_at"),
    ("risk", "ops.risk_assessments", "assessed_at"),
)


def _watch_decisions(url: str, seconds: float) -> set[tuple[str, str, str, object]]:
    """Every (decision, channel, order, time) that appears in the decision tables during
    `seconds`, read once a second (a decision is upserted: the table keeps the latest)."""
    seen: set[tuple[str, str, str, object]] = set()
    since: dict[str, object] = {}
    end = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < end:
            for name, table, at in DECISION_TABLES:
                # a minute back: a transaction stamps its rows before it commits
                query = (
                    f"select channel, platform_order_no, {at} from {table} "
                    f"where {at} > coalesce(%s::timestamptz - interval '60 seconds', '-infinity')"
                )
                try:
                    rows = conn.execute(query, [since.get(name)]).fetchall()
                except psycopg.errors.UndefinedTable:
                    continue  # not written yet
                seen.update((name, c, n, a) for c, n, a in rows)
                if rows:
                    newest = max(a for _, _, a in rows)
                    since[name] = max(newest, since.get(name, newest))
            time.sleep(1.0)
    return seen


# per decided order, from the tables alone: its last push received before its latest decision
DECISION_LATENCY = (
    PUSHES
    + """
select extract(epoch from d.{at} - max(p.received_at))::float8
from {table} d
join pushes p using (channel, platform_order_no)
where p.received_at <= d.{at}
group by d.channel, d.platform_order_no, d.{at}
"""
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=120, help="how long the live sandbox runs")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument(
        "--warmup", type=int, default=240,
        help="seconds of the start (the initial full run) left out of push -> decision",
    )  # fmt: skip
    parser.add_argument(
        "--decision-worker", action=argparse.BooleanOptionalAction, default=True,
        help="run `orderpulse up`'s decision worker beside the daemon (as `up` does)",
    )  # fmt: skip
    args = parser.parse_args()
    console = Console()

    home = args.home or Path(tempfile.mkdtemp(prefix="op_push_"))
    os.environ["ORDERPULSE_HOME"] = str(home)
    from kernel import runtime
    from kernel.settings import Settings

    warehouse = runtime.prepare(Settings(home=home))
    bin_dir = Path(sys.executable).parent
    # the tables, the dbt manifest and the `dbt` pool limit, as `orderpulse up` prepares them
    subprocess.run([str(bin_dir / "orderpulse"), "prepare"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    from orderpulse.services import start_services

    services = start_services(console, home=home, live=True)
    if args.decision_worker:
        # as `orderpulse up` does: the automation leaves the decisions' path to the worker
        os.environ["ORDERPULSE_DECISION_WORKER"] = "1"
    daemon = subprocess.Popen(
        [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # its own process group: the code servers and run workers it starts go with it
        start_new_session=True,
    )
    groups = [daemon]
    if args.decision_worker:
        groups.append(
            subprocess.Popen(
                [sys.executable, "-m", "orchestration.decision_worker"],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        )
    # like `orderpulse up`: one run of the whole graph first, then automation keeps it current
    subprocess.run(
        [str(bin_dir / "dagster"), "job", "launch", "-w", "workspace.yaml",
         "-j", "orderpulse_full_run"],
        cwd=ROOT, check=False, capture_output=True,
    )  # fmt: skip
    worker = "with" if args.decision_worker else "without"
    console.print(
        f"daemon ({worker} the decision worker) and live sandbox running for {args.seconds}s "
        f"(home {home})"
    )
    try:
        seen = _watch_decisions(warehouse.url(), args.seconds)
        for group in groups:
            os.killpg(group.pid, signal.SIGTERM)
        for group in groups:
            group.wait(timeout=60)
        direct = _direct_reference(home, warehouse.url())  # the sandbox still serves
    finally:
        for group in groups:
            with contextlib.suppress(ProcessLookupError):  # whatever of the group is left
                os.killpg(group.pid, signal.SIGKILL)
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
        latest = {
            name: [
                r[0]
                for r in conn.execute(
                    DECISION_LATENCY.format(table=table, at=at), {"warmup": args.warmup}
                )
            ]
            for name, table, at in DECISION_TABLES
        }
        conn.execute(
            "create temp table seen_decisions (decision text, channel text, "
            "platform_order_no text, at timestamptz)"
        )
        with conn.cursor().copy("copy seen_decisions from stdin") as copy:
            for row in seen:
                copy.write_row(row)
        decisions, redecided = {}, {}
        for name, _, _ in DECISION_TABLES:
            params = {"warmup": args.warmup, "decision": name}
            decisions[name] = [r[0] for r in conn.execute(SEEN_LATENCY, params)]
            redecided[name] = conn.execute(REDECIDED, params).fetchone()[0]
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
    table = Table(title=f"push message -> decision ({worker} the decision worker)")
    for col in ("decision", "pushes decided", "p50 s", "p95 s", "max s", "re-decided"):
        table.add_column(col, justify="right" if col != "decision" else "left")
    for name, values in decisions.items():
        if values:
            table.add_row(
                name, str(len(values)), f"{statistics.median(values):.1f}",
                f"{_percentile(values, 0.95):.1f}", f"{max(values):.1f}", str(redecided[name]),
            )  # fmt: skip
    for name, values in latest.items():
        if values:
            table.add_row(
                f"{name} (latest decision only)", str(len(values)),
                f"{statistics.median(values):.1f}", f"{_percentile(values, 0.95):.1f}",
                f"{max(values):.1f}", "",
            )  # fmt: skip
    console.print(table)
    if args.out:
        figures = {
            "seconds": args.seconds,
            "pending_at_end": pending,
            "decision_worker": args.decision_worker,
        }
        for name, values in decisions.items():
            if values:
                figures[f"push_to_{name}"] = {
                    "pushes_decided": len(values),
                    "p50_s": statistics.median(values),
                    "p95_s": _percentile(values, 0.95),
                    "max_s": max(values),
                    "redecided": redecided[name],
                }
        for name, values in latest.items():
            if values:
                figures[f"push_to_latest_{name}"] = {
                    "orders": len(values),
                    "p50_s": statistics.median(values),
                    "p95_s": _percentile(values, 0.95),
                    "max_s": max(values),
                }
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
