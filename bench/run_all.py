"""`make bench`: every benchmark of bench/, one after another, with a table per workload.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME,...] [--runs 3]

Each workload is one of the scripts beside this file, run in its own process with `--out` (so
its peak memory is its own). A workload whose first run takes under five minutes runs `--runs`
times (default 3) and every figure is reported as median, min and max; longer ones run once.
The default sizes are the issues' (1,000,000 orders where the script takes a size); `--quick`
runs small sizes in a few minutes, to check that everything works. Results, with the commit,
the date and the machine, go to `bench/results/<date>-<commit>[-quick].json`.

What each script measures, and its reference measured in the same run, is in its docstring and
in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
REPEAT_UNDER_S = 300  # a workload faster than this is run several times


@dataclass(frozen=True)
class Workload:
    name: str
    script: str
    args: tuple[str, ...]
    quick_args: tuple[str, ...]
    headline: tuple[str, ...]  # the figures (flattened keys) printed first


WORKLOADS = (
    Workload(
        "routing_decisions", "routing_decisions.py", ("--orders", "1000000"),
        ("--orders", "20000"),
        ("decide_orders_per_s", "explain_orders_per_s", "floor_orders_per_s", "max_rss_mib"),
    ),
    Workload(
        "routing_quality", "routing_quality.py", ("--orders", "100000"),
        ("--orders", "5000", "--days", "3"),
        ("ratios",),
    ),
    Workload(
        "risk_scoring", "risk_scoring.py", ("--orders", "1000000"), ("--orders", "20000"),
        ("orders_per_second", "seconds", "max_rss_mb"),
    ),
    Workload(
        "risk_quality", "risk_quality.py", ("--orders", "100000"), ("--quick",),
        ("rules", "rules_and_model", "bad_firing_no_signal", "honest_firing_a_signal"),
    ),
    Workload(
        "ingest_raw", "ingest_raw.py", ("--orders", "1000000"), ("--orders", "5000"),
        ("raw_load_rows_per_s", "psql_copy_rows_per_s", "ratio_to_copy",
         "end_to_end_rows_per_s", "peak_rss_mib"),
    ),
    Workload(
        "pull_processes", "pull_processes.py", ("--orders", "20000", "--rounds", "2"),
        ("--orders", "3000", "--rounds", "1"),
        ("orders_per_s",),
    ),
    Workload(
        "dbt_build", "dbt_build.py", ("--orders", "1000000"),
        ("--orders", "5000", "--sample", "2000", "--changed", "500"),
        ("figures", "incremental_run_share", "incremental_build_share", "bench_peak_rss_mib"),
    ),
    Workload(
        "full_flow", "full_flow.py", ("--orders", "1000000"), ("--orders", "2000", "--days", "2"),
        ("stages", "run_seconds", "run_orders_per_s", "peak_rss_mib"),
    ),
    Workload(
        "incremental_cycle", "incremental_cycle.py", ("--base", "1000000"), ("--quick",),
        ("stages", "cycle_seconds", "cycle_orders_per_s", "checks_passed",
         "peak_rss_mib"),
    ),
    Workload(
        "webhook_load", "webhook_load.py", ("--events", "20000"), ("--events", "2000"),
        ("accepted_per_s", "bare_per_s", "ratio_to_bare", "lost", "peak_rss_mib"),
    ),
    Workload(
        "push_latency", "push_latency.py", ("--seconds", "540", "--warmup", "240"),
        ("--seconds", "45", "--warmup", "20"),
        ("dagster", "reference", "pending_at_end", "push_to_routing", "push_to_risk"),
    ),
)  # fmt: skip


def flatten(value: object, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a result document as dotted keys; list items keyed by their label."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, int | float):
        return {prefix: float(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = item.get("label", index) if isinstance(item, dict) else index
            out.update(flatten(item, f"{prefix}[{label}]"))
    return out


def machine() -> dict[str, object]:
    mem = 0
    with open("/proc/meminfo") as meminfo:  # Linux: the machine the figures belong to
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    return {
        "cpus": os.cpu_count(),
        "memory_mib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg()[0],
    }


def commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"


def run_once(workload: Workload, quick: bool, log: Path) -> tuple[dict, float, int]:
    """One run of a workload's script in its own process: (its JSON, seconds, exit code)."""
    with tempfile.TemporaryDirectory(prefix=f"op-bench-{workload.name}-") as scratch:
        out = Path(scratch) / "result.json"
        args = workload.quick_args if quick else workload.args
        command = [sys.executable, str(BENCH / workload.script), *args, "--out", str(out)]
        began = time.monotonic()
        with log.open("a", encoding="utf-8") as sink:
            sink.write(f"\n$ {' '.join(command)}\n")
            sink.flush()
            code = subprocess.run(
                command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
            ).returncode
        seconds = time.monotonic() - began
        result = json.loads(out.read_text()) if out.exists() else {}
    return result, seconds, code


def summarise(runs: list[dict], seconds: list[float]) -> dict[str, dict[str, float]]:
    """median, min and max of every numeric figure over the runs (and of the wall time)."""
    flat = [flatten(r) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    out = {"wall_seconds": _stats(seconds)}
    for key in keys:
        values = [f[key] for f in flat if key in f]
        out[key] = _stats(values)
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}  # fmt: skip


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.3f}"


def print_table(console: Console, workload: Workload, stats: dict, code: int) -> None:
    title = f"{workload.name} ({workload.script})" + ("" if code == 0 else " [red]FAILED[/]")
    table = Table(title=title, title_justify="left")
    for column in ("figure", "median", "min", "max", "runs"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    first = [k for k in stats if k == "wall_seconds" or k.startswith(workload.headline)]
    rest = [k for k in stats if k not in first]
    for key in first + rest[: max(0, 24 - len(first))]:
        s = stats[key]
        table.add_row(key, _fmt(s["median"]), _fmt(s["min"]), _fmt(s["max"]), str(s["runs"]))
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--runs", type=int, default=3, help="runs of a workload under 5 min")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()

    chosen = [w for w in WORKLOADS if not args.only or w.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - {w.name for w in WORKLOADS}
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; known: {[w.name for w in WORKLOADS]}")
    console = Console()
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{commit()}" + ("-quick" if args.quick else "")
    log = args.results / f"{stamp}.log"
    document: dict = {
        "commit": commit(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick, "machine": machine(), "workloads": {},
    }  # fmt: skip
    failed = []
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        overall = progress.add_task("benchmarks", total=len(chosen))
        for workload in chosen:
            progress.update(overall, description=f"{workload.name} (log: {log.name})")
            runs, seconds, code = [], [], 0
            while True:
                result, took, code = run_once(workload, args.quick, log)
                if code != 0 or not result:
                    break
                runs.append(result)
                seconds.append(took)
                if len(runs) >= args.runs or took >= REPEAT_UNDER_S:
                    break
            stats = summarise(runs, seconds) if runs else {}
            document["workloads"][workload.name] = {
                "args": list(workload.quick_args if args.quick else workload.args),
                "exit_code": code, "runs": runs, "summary": stats,
            }  # fmt: skip
            if code != 0 or not runs:
                failed.append(workload.name)
            progress.console.print(f"{workload.name}: {len(runs)} run(s), exit {code}")
            if stats:
                print_table(progress.console, workload, stats, code)
            progress.advance(overall)
    path = args.results / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False, default=str))
    console.print(f"results: {path}; output of the scripts: {log}")
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)} (see the log)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
