"""`make bench` runs bench/run_all.py: every workload it names is a script of bench/ that
takes the options the runner passes (sizes and `--out`), and the runner's figures are the
numeric leaves of each script's JSON, summarised over runs."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _runner():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _options(script: Path) -> set[str]:
    """The `--flags` a script's argparse declares (read from its source, not run)."""
    flags = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            flags |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return {f for f in flags if isinstance(f, str) and f.startswith("--")}


def test_every_workload_is_a_script_taking_the_runners_options():
    runner = _runner()
    names = {w.name for w in runner.WORKLOADS}
    assert names >= {"ingest_raw", "dbt_build", "push_latency", "full_flow", "incremental_cycle"}
    for workload in runner.WORKLOADS:
        script = BENCH / workload.script
        assert script.exists(), script
        passed = {a for a in workload.args + workload.quick_args if a.startswith("--")}
        assert passed | {"--out"} <= _options(script), (workload.name, passed - _options(script))


def test_figures_are_summarised_over_runs():
    runner = _runner()
    runs = [
        {"rate": 10, "ok": True, "figures": [{"label": "build", "seconds": 4.0}], "name": "x"},
        {"rate": 30, "ok": True, "figures": [{"label": "build", "seconds": 2.0}], "name": "x"},
        {"rate": 20, "ok": False, "figures": [{"label": "build", "seconds": 3.0}], "name": "x"},
    ]
    stats = runner.summarise(runs, [1.0, 2.0, 3.0])
    assert stats["rate"] == {"median": 20, "min": 10, "max": 30, "runs": 3}
    assert stats["figures[build].seconds"]["median"] == 3.0
    assert stats["wall_seconds"]["max"] == 3.0
    assert "ok" not in stats and "name" not in stats  # booleans and text are not figures
