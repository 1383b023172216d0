"""The whole flow a merchant lives with, at backfill size: N orders (default 1,000,000) of all
ten channels, with their merchant records, through ingest -> dbt build -> decisions (routing,
locks, merges, risk) -> quality checks and reports, the way `orderpulse demo` runs it (one
Dagster run of `orderpulse_full_run`, in process, on a scratch ORDERPULSE_HOME).

    .venv/bin/python bench/full_flow.py [--orders 1000000] [--days 3] [--out result.json]

It runs `orderpulse demo --orders N` as a child process, then reads the run's step timings from
that home's Dagster instance and adds them up per stage:

- ingest: steps of group `ingest` (marketplace pulls, SFTP, ERP/H5 mall bridge, POS, merchant
  systems), bound by the gateways' detail calls;
- transform: the two dbt ops (groups staging/intermediate/marts: `dbt build`, models and
  their data tests);
- decisions: groups `enrichment` (addresses) and `fulfillment` (routing, locks, merges, risk);
- quality: steps that materialise nothing (Great Expectations checks and other asset checks)
  and the reports.

Figures: seconds per stage, orders/s of each stage and of the whole, the run's wall time, and
the peak memory (max RSS) of the demo process and of the largest process it started (dbt),
from `getrusage` of the waited children.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "transform", "decisions", "quality")


# Dagster asset groups -> stages; a step that materialises nothing (checks only) is quality
GROUP_STAGE = {
    "ingest": "ingest", "staging": "transform", "intermediate": "transform",
    "marts": "transform", "enrichment": "decisions", "fulfillment": "decisions",
}  # fmt: skip


def step_seconds(home: Path) -> tuple[dict[str, float], dict[str, float], float]:
    """Per stage and per step: seconds, from the last run in `home`'s Dagster instance; and the
    run's wall time. A step's stage is its materialised assets' group (quality otherwise)."""
    sys.path.insert(0, str(ROOT))
    os.environ["ORDERPULSE_HOME"] = str(home)
    import dagster as dg

    from kernel import runtime
    from orchestration.dbt.project import prepare_manifest

    runtime.prepare()
    prepare_manifest()
    from orchestration.definitions import defs

    graph = defs.get_repository_def().asset_graph
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records(limit=1)
        run_id = record.dagster_run.run_id
        stats = instance.get_run_step_stats(run_id)
        wall = (record.end_time or time.time()) - (record.start_time or time.time())
        stage_of: dict[str, str] = {}
        for event in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1_000_000
        ).records:
            entry = event.event_log_entry
            group = graph.get(entry.dagster_event.asset_key).group_name
            stage_of.setdefault(entry.step_key, GROUP_STAGE.get(group, "quality"))
    steps = {s.step_key: s.end_time - s.start_time for s in stats if s.start_time and s.end_time}
    stages = dict.fromkeys(STAGES, 0.0)
    for key, seconds in steps.items():
        stages[stage_of.get(key, "quality")] += seconds
    return stages, steps, wall


def print_stages(
    per_stage: dict[str, dict],
    total_label: str,
    total_seconds: float,
    total_rate: int | None,
    note: str = "",
) -> None:
    """The per-stage table (seconds, orders/s) and its total line (then `note`)."""
    print()
    print(f"{'stage':<12}{'seconds':>10}{'orders/s':>12}")
    for name, figures in per_stage.items():
        rate = f"{figures['orders_per_s']:,}" if figures["orders_per_s"] else "-"
        print(f"{name:<12}{figures['seconds']:>10,.1f}{rate:>12}")
    print(f"{total_label:<12}{total_seconds:>10,.1f}{total_rate or 0:>12,}{note}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="scratch ORDERPULSE_HOME")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="op-flow-")) / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORDERPULSE_HOME": str(home)}
    env.pop("ORDERPULSE_PG_URL", None)  # the scratch home's own embedded server
    log = home / "full_flow.log"
    cmd = [
        str(Path(sys.executable).parent / "orderpulse"), "demo", "--orders", str(args.orders),
        "--days", str(args.days), "--seed", str(args.seed), "--yes",
    ]  # fmt: skip
    print(f"running {' '.join(cmd[1:])} (output in {log})", flush=True)
    began = time.monotonic()
    with log.open("w") as out:
        code = subprocess.call(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    total = time.monotonic() - began
    peak_child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if code != 0:
        print(log.read_text()[-3000:])
        print(f"the demo exited {code}")
        return 1

    stages, steps, wall = step_seconds(home)
    per_stage = {
        name: {
            "seconds": round(seconds, 1),
            "orders_per_s": round(args.orders / seconds) if seconds else None,
        }
        for name, seconds in stages.items()
    }
    slowest = sorted(steps.items(), key=lambda kv: kv[1], reverse=True)[:8]
    result = {
        "orders": args.orders,
        "days": args.days,
        "stages": per_stage,
        "run_seconds": round(wall, 1),
        "run_orders_per_s": round(args.orders / wall) if wall else None,
        "demo_seconds": round(total, 1),
        "peak_rss_mib_largest_process": round(peak_child_mib),
        "slowest_steps": [{"label": k, "seconds": round(v, 1)} for k, v in slowest],
    }
    print_stages(per_stage, "run", wall, result["run_orders_per_s"])
    print(f"demo process (world generation, run, summary): {total:,.1f} s")
    print(f"peak memory of the largest process: {result['peak_rss_mib_largest_process']:,} MiB")
    print("slowest steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in slowest))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    subprocess.call(
        [str(Path(sys.executable).parent / "orderpulse"), "db", "stop"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
