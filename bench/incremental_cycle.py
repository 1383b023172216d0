"""Workload 2 of issue 14, the incremental cycle: on top of a built base world (default
1,000,000 orders), 10,000 new or changed marketplace orders appear on the platforms, and the
pipeline the demo runs (`orderpulse_full_run`: ingest -> dbt build -> decisions -> quality
checks and reports) runs once more, incrementally. Measured: seconds from the start of that run
to its end (the decisions written and the checks passed), per stage as bench/full_flow.py adds
them up, and orders/s.

    .venv/bin/python bench/incremental_cycle.py [--base 1000000] [--changed 10000] [--home DIR]
    .venv/bin/python bench/incremental_cycle.py --quick     # base 2,000 (2 days), 200 changed

1. The base: `bench/full_flow.py --orders BASE --home HOME` (the whole flow once, a scratch
   ORDERPULSE_HOME with its own embedded PostgreSQL), unless HOME already holds a world of BASE
   orders built that way (its `sandbox.json`): then it is reused as it is.
2. The change, built in a child process on that home: half of the orders are base orders (the
   base world regenerated from its seed, days and end) that move on by one platform event
   (an unpaid order is paid, a paid one ships, a shipped one is delivered, a delivered one is
   refunded), half are new orders shaped like base orders, numbered apart and created in the
   window between where the base run's pulls stopped (their cursors; the child waits until
   that window is a few minutes wide) and a few minutes before now (their lifecycles
   compressed as the live sandbox does). All on the six marketplaces, whose pulls are
   incremental by modified time. The sandbox serves the base world plus these orders
   (`orderpulse demo --scenario FILE --add`'s machinery, with the base world's own end so the
   base orders are unchanged), and the job runs with the normal incremental config.
3. The sandbox serves from a process of its own (as in full_flow.py: the platforms are not in
   the pipeline's process, and their pages are not served under its interpreter lock); the
   run is `execute_in_process` in the child. dbt's parse state for the warehouse's connection
   is made before the clock starts, as live mode keeps it from one dbt step to the next.
4. The figures: the run's step timings from the home's Dagster instance (full_flow's
   `step_seconds`), the asset checks passed and failed, the decisions written during the run,
   the peak memory (VmHWM, sampled) of the run's process, dbt, PostgreSQL and the sandbox.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# the newest change lies this far before now: PDD serves only windows ending >= 3 min ago
SAFETY = timedelta(minutes=6)
NEXT_EVENT = {None: "pay", "pay": "ship", "ship": "deliver", "deliver": "refund"}
CHILD_RESULT = "incremental_cycle_child.json"
SANDBOX_PARAMS = "incremental_sandbox.json"  # the base world's parameters, for the sandbox


# -- the change (child process) ---------------------------------------------------------------
def changed_orders(
    generated: dict, count: int, after: datetime, now: datetime
) -> tuple[list, dict]:
    """`count` marketplace orders for the scenario file: half base orders moved on by one event,
    half new copies of base orders, all their changes in (after, now - SAFETY], `after` being
    where the base run's pulls stopped (their cursors); and the window. Seeded by the base
    world's seed: the same base, `after` and `now` give the same change."""
    from sandbox.model import MARKETPLACES, Event, Order
    from sandbox.server import LIVE_KEPT_LABELS, LIVE_TIME_SCALE
    from sandbox.world import iter_orders

    end = datetime.fromisoformat(generated["end"])
    start, stop = max(end, after) + timedelta(seconds=1), now - SAFETY
    if stop <= start + timedelta(minutes=1):
        raise SystemExit(f"the base was pulled up to {start}: run again after {start + SAFETY}")
    chunks = iter_orders(
        generated["seed"], generated["orders"], generated["days"], end, calm=generated["calm"]
    )
    pool: list[Order] = []
    for chunk in chunks:  # enough base orders to choose from; the rest is never built
        pool += [o for o in chunk if o.channel in MARKETPLACES]
        if len(pool) >= 2 * count:
            break
    rng = random.Random(f"incremental:{generated['seed']}")
    span = (stop - start).total_seconds()

    def moment() -> datetime:
        return start + timedelta(seconds=rng.uniform(0, span))

    out: list[Order] = []
    movable = [o for o in pool if not {e.type for e in o.events} & {"cancel", "refund", "reject"}]
    for order in rng.sample(movable, min(count // 2, len(movable))):
        last = max((e.type for e in order.events if e.type in NEXT_EVENT), default=None,
                   key=list(NEXT_EVENT).index)  # fmt: skip
        event = Event(at=moment(), type=NEXT_EVENT[last])
        data = order.model_dump()
        data["events"] = [*data["events"], event.model_dump()]
        out.append(Order.model_validate(data))
    for serial, template in enumerate(rng.choices(pool, k=count - len(out)), start=1):
        created = moment()

        def at(when: datetime, t: Order = template, c: datetime = created) -> datetime:
            return c + (when - t.created_at) / LIVE_TIME_SCALE

        number = f"{template.platform_order_no}N{serial:06d}"  # apart from every base number
        out.append(
            template.model_copy(
                update={
                    "platform_order_no": number,
                    "created_at": created,
                    "paid_at": at(template.paid_at) if template.paid_at else None,
                    "events": [e.model_copy(update={"at": at(e.at)}) for e in template.events],
                    "labels": [x for x in template.labels if x in LIVE_KEPT_LABELS],
                }
            )
        )
    window = {"start": start.isoformat(), "end": stop.isoformat()}
    return out, window


def run_cycle(home: Path, count: int) -> int:
    """Child process: publish the change over the base world, run the job once, write what the
    run did to HOME/CHILD_RESULT."""
    sys.path.insert(0, str(ROOT))
    import dagster as dg
    import psycopg
    from full_flow import stop_group

    from orchestration.definitions import defs
    from orchestration.threaded_executor import execute_in_process_threaded
    from orderpulse.cli import _prepare_everything

    _prepare_everything()  # rule files, warehouse, owned tables, dbt manifest, pools
    print(f"dbt parse state for this warehouse ({warm_parse_state():.1f} s)", flush=True)
    from sandbox.model import MARKETPLACES

    generated = json.loads((home / "sandbox.json").read_text())["generated"]
    with psycopg.connect(os.environ["ORDERPULSE_WAREHOUSE_URL"]) as conn:
        (pulled_to,) = conn.execute(
            "select max(cursor_value) from raw.ingest_cursors where source = any(%s)",
            [list(MARKETPLACES)],
        ).fetchone()
    # changes inside the pulls' look-back would be re-read anyway; after the cursors they must be
    # found by the incremental pull itself, so wait until the window is wide enough
    ready = pulled_to + SAFETY + timedelta(minutes=2)
    if datetime.now(UTC) < ready:
        print(f"waiting until {ready:%H:%M:%S} (the base was pulled up to {pulled_to:%H:%M:%S})")
        time.sleep((ready - datetime.now(UTC)).total_seconds())
    began = time.monotonic()
    orders, window = changed_orders(generated, count, pulled_to, datetime.now(UTC))
    scenario = home / "incremental_scenario.jsonl"
    scenario.write_text("".join(o.model_dump_json() + "\n" for o in orders))
    print(f"{len(orders):,} changed/new orders in {window} ({time.monotonic() - began:.1f} s)")
    began = time.monotonic()
    (home / SANDBOX_PARAMS).write_text(json.dumps(generated))
    sandbox = start_cycle_sandbox(home)
    try:
        sandbox_s = time.monotonic() - began
        print(f"sandbox serving base + change ({sandbox_s:.1f} s)", flush=True)
        job = defs.resolve_job_def("orderpulse_full_run")
        started = datetime.now(UTC)
        with dg.DagsterInstance.get() as instance:
            result = execute_in_process_threaded(
                job,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
    finally:
        stop_group(sandbox)
    checks = [c for c in result.get_asset_check_evaluations()]
    with psycopg.connect(os.environ["ORDERPULSE_WAREHOUSE_URL"]) as conn:
        # the change reached raw: marketplace orders (re)loaded by this run
        loaded = sum(
            conn.execute(
                f"select count(*) from raw.{channel}_orders where loaded_at >= %s", [started]
            ).fetchone()[0]
            for channel in MARKETPLACES
        )
        decided = {
            table: conn.execute(
                f"select count(*) from ops.{table} where {column} >= %s", [started]
            ).fetchone()[0]
            for table, column in (("routing_decisions", "decided_at"),
                                  ("risk_assessments", "assessed_at"))
        }  # fmt: skip
    document = {
        "success": result.success,
        "orders": len(orders),
        "window": window,
        "sandbox_seconds": round(sandbox_s, 1),
        "checks_passed": sum(1 for c in checks if c.passed),
        "checks_failed": sorted(c.asset_check_key.to_user_string() for c in checks if not c.passed),
        "written_during_run": {"raw_marketplace_orders": loaded, **decided},
    }
    (home / CHILD_RESULT).write_text(json.dumps(document, indent=1))
    return 0 if result.success else 1


def warm_parse_state() -> float:
    """One `dbt parse` under the warehouse's connection before the clock starts: in live mode
    each dbt step finds the parse state the step before it kept (`keep_partial_parse`), and a
    fresh checkout has none made under this connection, so its first step would parse the
    whole project (6.8 s against 3.1 s at 1 M orders): a cost of the checkout, not of a cycle."""
    from kernel.database import ensure_database
    from orchestration.dbt.project import DBT_PROJECT_DIR

    began = time.monotonic()
    subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "parse", "--project-dir",
         str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)],
        env={**os.environ, **ensure_database().env()},
        check=True,
        capture_output=True,
    )  # fmt: skip
    return time.monotonic() - began


def start_cycle_sandbox(home: Path, timeout: float = 3 * 3600) -> subprocess.Popen:
    """The sandbox serving base + change (`serve_sandbox`) in its own process group; returns
    once it has published, or raises with its output's tail."""
    from full_flow import start_published

    cmd = [sys.executable, __file__, "--serve-sandbox", "--home", str(home)]
    return start_published(cmd, None, home / "incremental_sandbox.log", timeout)


def serve_sandbox(home: Path) -> int:
    """Grandchild: the base world (its own seed, days and end) plus the change's scenario,
    served until SIGINT or SIGTERM."""
    sys.path.insert(0, str(ROOT))
    from sandbox.server import Sandbox

    generated = json.loads((home / SANDBOX_PARAMS).read_text())
    sandbox = Sandbox(
        home, seed=generated["seed"], orders=generated["orders"], days=generated["days"],
        end=datetime.fromisoformat(generated["end"]),
        scenario=home / "incremental_scenario.jsonl", add=True,
        erp_admin_url=os.environ.get("ORDERPULSE_WAREHOUSE_URL"), calm=generated["calm"],
        full_world=not generated.get("marketplaces_only", False),  # as the base was served
    ).start()  # fmt: skip
    if sandbox.scenario_errors:
        sandbox.stop()
        print(f"scenario rejected: {sandbox.scenario_errors[:3]}", flush=True)
        return 1
    print("orders published", flush=True)
    sandbox.serve_forever()
    return 0


# -- the benchmark (parent process) -------------------------------------------------------------
def base_is_built(home: Path, base: int) -> bool:
    path = home / "sandbox.json"
    if not path.exists():
        return False
    return json.loads(path.read_text()).get("generated", {}).get("orders") == base


def orderpulse(home: Path, *args: str) -> None:
    env = {**os.environ, "ORDERPULSE_HOME": str(home)}
    env.pop("ORDERPULSE_PG_URL", None)
    subprocess.call(
        [str(Path(sys.executable).parent / "orderpulse"), *args], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", type=int, default=1_000_000, help="orders of the base world")
    parser.add_argument("--days", type=int, default=3, help="days of the base world")
    parser.add_argument("--changed", type=int, default=10_000, help="new or changed orders")
    parser.add_argument("--quick", action="store_true", help="base 2,000 (2 days), 200 changed")
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--cycle-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-sandbox", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.base, args.days, args.changed = 2_000, 2, 200
    home = (args.home or Path(tempfile.mkdtemp(prefix="op-cycle-")) / "home").resolve()
    if args.cycle_child:
        return run_cycle(home, args.changed)
    if args.serve_sandbox:
        return serve_sandbox(home)

    home.mkdir(parents=True, exist_ok=True)
    if base_is_built(home, args.base):
        print(f"base world of {args.base:,} orders: reusing {home}")
    else:
        print(f"building the base world of {args.base:,} orders (bench/full_flow.py)", flush=True)
        code = subprocess.call(
            [sys.executable, str(BENCH / "full_flow.py"), "--orders", str(args.base),
             "--days", str(args.days), "--home", str(home)], cwd=ROOT,
        )  # fmt: skip
        if code != 0:
            print("the base run failed")
            return 1
    env = {**os.environ, "ORDERPULSE_HOME": str(home)}
    env.pop("ORDERPULSE_PG_URL", None)
    log = home / "incremental_cycle.log"
    print(f"publishing {args.changed:,} new or changed orders and running (log in {log})")
    from full_flow import PeakSampler

    began = time.monotonic()
    with log.open("w") as out, PeakSampler({}, home) as sampler:
        child_proc = subprocess.Popen(
            [sys.executable, __file__, "--cycle-child", "--home", str(home),
             "--changed", str(args.changed)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        sampler.add_root("cycle run", child_proc.pid)
        code = child_proc.wait()
    child_s = time.monotonic() - began
    peaks = {
        ("sandbox" if role == "cycle run's other children (largest)" else role): mib
        for role, mib in sampler.peaks_mib().items()
    }  # the run's one other child is the sandbox (`--serve-sandbox`)
    child_path = home / CHILD_RESULT
    if code != 0 or not child_path.exists():
        print(log.read_text()[-3000:])
        print(f"the cycle exited {code}")
        return 1
    child = json.loads(child_path.read_text())

    from full_flow import (  # the whole flow's stages and table
        dbt_timings,
        print_peak_rises,
        print_slowest_dbt,
        print_stages,
        stage_spans,
        step_seconds,
    )

    stages, steps, wall = step_seconds(home)
    spans = stage_spans()
    orders = child["orders"]
    per_stage = {
        name: {
            "seconds": round(s, 1),
            "orders_per_s": round(orders / s) if s else None,
            "span_seconds": spans.get(name),
        }
        for name, s in stages.items()
    }
    slowest = sorted(steps.items(), key=lambda kv: kv[1], reverse=True)[:8]
    result = {
        "base_orders": args.base,
        "orders": orders,
        "window": child["window"],
        "stages": per_stage,
        "cycle_seconds": round(wall, 1),
        "cycle_orders_per_s": round(orders / wall) if wall else None,
        "target_seconds": 30,
        "checks_passed": child["checks_passed"],
        "checks_failed": child["checks_failed"],
        "written_during_run": child["written_during_run"],
        "sandbox_seconds": child["sandbox_seconds"],
        "child_seconds": round(child_s, 1),
        "peak_rss_mib": peaks,
        "slowest_steps": [{"label": k, "seconds": round(v, 1)} for k, v in slowest],
        "steps": {k: round(v, 2) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])},
        **dbt_timings(),
        "run_peak_rises": sampler.largest_rises("cycle run"),
    }
    print_stages(per_stage, "cycle", wall, result["cycle_orders_per_s"], "   (target 30 s)")
    print(
        f"{orders:,} new or changed orders on a base of {args.base:,}; checks passed "
        f"{child['checks_passed']}, failed {len(child['checks_failed'])}; written during the "
        f"run: {child['written_during_run']}"
    )
    print("peak memory (MiB): " + ", ".join(f"{k} {v:,}" for k, v in peaks.items()))
    print("slowest steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest))
    print_slowest_dbt(result)
    print_peak_rises("cycle run", result["run_peak_rises"])
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    orderpulse(home, "db", "stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
