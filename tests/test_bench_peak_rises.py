"""bench/full_flow.py names the steps that were running when a process's peak memory rose:
the run's steps execute in one process, so its peak alone does not say which step set it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _full_flow():
    spec = importlib.util.spec_from_file_location("bench_full_flow", BENCH / "full_flow.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_largest_rises_of_a_peak_name_the_steps_running_then(tmp_path):
    flow = _full_flow()
    flow.STEP_WINDOWS.clear()
    flow.STEP_WINDOWS.update({
        "raw__taobao_orders": (1000.0, 1300.0),
        "merchant_systems": (1000.0, 1250.0),
        "address_geo": (1400.0, 1430.0),
    })  # fmt: skip
    sampler = flow.PeakSampler({}, tmp_path, interval=1.0)
    mib = 1024
    sampler.rises["demo"] = [
        (990.0, 300 * mib),  # the process's start: its first sample, not a rise
        (1100.0, 700 * mib),  # +400 while both pulls ran
        (1260.0, 800 * mib),  # +100, the taobao pull alone
        (1415.0, 2100 * mib),  # +1,300 in address placement
    ]

    rises = sampler.largest_rises("demo", count=2)

    assert [r["mib"] for r in rises] == [1300, 400]
    assert rises[0]["steps"] == ["address_geo"] and rises[0]["to_mib"] == 2100
    assert rises[1]["steps"] == ["merchant_systems", "raw__taobao_orders"]
    assert sampler.largest_rises("sandbox") == []


def test_stages_that_overlap_report_their_spans_and_the_wall_after_the_last_load() -> None:
    """Steps run side by side: a stage's span is its first start to its last end, and raw ->
    decisions and checks is the wall from the last load's end to the run's end, not the sum
    of the later stages' step seconds."""
    flow = _full_flow()
    flow.STEP_WINDOWS.clear()
    flow.STEP_STAGES.clear()
    windows = {
        "raw__taobao_orders": ("ingest", 1000.0, 1300.0),
        "raw__jd_orders": ("ingest", 1000.0, 1350.0),
        "raw__jd_orders_gx_raw_orders": ("quality", 1350.0, 1360.0),
        "dbt_before_decisions": ("transform", 1350.0, 1450.0),
        "ops__routing_decisions": ("decisions", 1450.0, 1460.0),
        "dbt_after_decisions": ("transform", 1460.0, 1600.0),
        "marts__fct_orders_gx_fct_orders": ("quality", 1600.0, 1610.0),
    }
    for key, (stage, start, end) in windows.items():
        flow.STEP_WINDOWS[key] = (start, end)
        flow.STEP_STAGES[key] = stage
    flow.RUN_WINDOW[:] = [995.0, 1612.0]

    assert flow.stage_spans() == {
        "ingest": 350.0, "transform": 250.0, "decisions": 10.0, "quality": 260.0,
    }  # fmt: skip
    assert flow.after_ingest_seconds() == 262.0


def test_the_pull_processes_are_a_role_of_their_own(tmp_path) -> None:
    """A pull forked by the run's fork server (connectors/pull_process.py) is counted apart
    from the run's other children (the incremental cycle reports those as the sandbox)."""
    import os
    import subprocess
    import time

    from connectors.pull_process import _pull_context

    flow = _full_flow()
    context = _pull_context()
    pull = context.Process(target=time.sleep, args=(5,), name="pull:test")
    pull.start()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        sampler = flow.PeakSampler({"cycle run": os.getpid()}, tmp_path)
        sampler.sample()
        roles = sampler.peaks_mib()
    finally:
        pull.terminate()
        other.terminate()
        pull.join()
        other.wait()
    assert roles["pull processes (largest)"] > 0
    assert roles["cycle run's other children (largest)"] > 0
    assert roles["cycle run"] > 0
