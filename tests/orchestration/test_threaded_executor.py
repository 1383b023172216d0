"""The threaded executor (orchestration/threaded_executor.py) runs ready steps side by side in
the run's process, keeps Dagster's order and failure handling, and runs one at a time when
told to."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob

JOBS = Path(__file__).with_name("threaded_jobs.py")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    success: bool
    all_events: list[dg.DagsterEvent]


def _run(job: str, tmp_path: Path, monkeypatch, **executor_config) -> Outcome:
    monkeypatch.setenv("THREADED_TEST_DIR", str(tmp_path))
    recon = ReconstructableJob.for_file(str(JOBS), job)
    run_config = {"execution": {"config": executor_config}} if executor_config else {}
    with (
        dg.instance_for_test() as instance,
        dg.execute_job(recon, instance=instance, run_config=run_config) as result,
    ):
        return Outcome(result.success, list(result.all_events))


def _step_failures(result: Outcome) -> dict[str, str]:
    return {
        e.step_key: e.step_failure_data.error.to_string()  # with its cause
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    }


def test_ready_steps_run_at_the_same_time(tmp_path: Path, monkeypatch) -> None:
    result = _run("meeting_job", tmp_path, monkeypatch)
    assert result.success, _step_failures(result)
    # both marks exist: each step waited for the other while it ran
    assert (tmp_path / "left").exists() and (tmp_path / "right").exists()
    started = [
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
    ]
    assert started[-1] == "joined"  # the downstream step waited for both


def test_the_steps_hand_the_interpreter_lock_round_often(tmp_path: Path, monkeypatch) -> None:
    """A step waiting on a socket or a query gets the lock back within 0.5 ms of another
    step's computing, not Python's 5 ms (a pull's requests waited that long, each)."""
    from orchestration.threaded_executor import SWITCH_INTERVAL_SECONDS

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        result = _run("meeting_job", tmp_path, monkeypatch)
    finally:
        sys.setswitchinterval(before)
    assert result.success, _step_failures(result)
    assert float((tmp_path / "switch_interval").read_text()) <= SWITCH_INTERVAL_SECONDS < 0.005


def test_one_at_a_time_when_max_concurrent_is_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THREADED_TEST_WAIT", "1")
    result = _run("meeting_job", tmp_path, monkeypatch, max_concurrent=1)
    assert not result.success
    failures = _step_failures(result)
    assert len(failures) == 1  # the first step timed out alone; the second could then meet it
    assert "never started" in next(iter(failures.values()))


def test_a_failed_step_fails_alone_and_stops_only_its_downstream(
    tmp_path: Path, monkeypatch
) -> None:
    result = _run("failing_job", tmp_path, monkeypatch)
    assert not result.success
    failures = _step_failures(result)
    assert list(failures) == ["broken"]
    assert "fails on purpose" in failures["broken"]
    assert (tmp_path / "fine").read_text() == "ran"
    assert not (tmp_path / "after_broken").exists()


def test_loads_run_one_at_a_time_unless_told_otherwise(tmp_path: Path, monkeypatch) -> None:
    """Loads parse pages under the process's one interpreter lock: one at a time by default,
    beside the other steps; the executor's setting lets more run."""
    monkeypatch.setenv("THREADED_TEST_WAIT", "1")
    alone = _run("load_meeting_job", tmp_path, monkeypatch)
    assert not alone.success
    assert len(_step_failures(alone)) == 1  # the first load waited for the second in vain
    for mark in ("left", "right"):
        (tmp_path / mark).unlink(missing_ok=True)
    together = _run("load_meeting_job", tmp_path, monkeypatch, loads_at_once=2)
    assert together.success, _step_failures(together)


def test_gx_checks_run_two_at_a_time_unless_told_otherwise(tmp_path: Path, monkeypatch) -> None:
    """GX checks hold their results in the process's memory: two at once by default (the 1 M
    backfill's run stayed under 2 GiB so), one when the executor's setting says so."""
    monkeypatch.setenv("THREADED_TEST_WAIT", "1")
    together = _run("check_meeting_job", tmp_path, monkeypatch)
    assert together.success, _step_failures(together)
    for mark in ("left", "right"):
        (tmp_path / mark).unlink(missing_ok=True)
    alone = _run("check_meeting_job", tmp_path, monkeypatch, checks_at_once=1)
    assert not alone.success
    assert len(_step_failures(alone)) == 1  # the first check waited for the second in vain


def test_pulls_in_processes_of_their_own_run_two_at_a_time_unless_told_otherwise(
    tmp_path: Path, monkeypatch
) -> None:
    """A marketplace pull has a process, and an interpreter lock, of its own: two at once by
    default; the executor's setting can hold them to one."""
    monkeypatch.setenv("THREADED_TEST_WAIT", "1")
    together = _run("pull_meeting_job", tmp_path, monkeypatch)
    assert together.success, _step_failures(together)
    for mark in ("left", "right"):
        (tmp_path / mark).unlink()
    alone = _run("pull_meeting_job", tmp_path, monkeypatch, pulls_at_once=1)
    assert not alone.success
    assert len(_step_failures(alone)) == 1


def test_the_marketplaces_are_pulled_in_the_order_the_registry_lists_them() -> None:
    from connectors.channels_config import load_channels
    from orchestration.ingest.assets import marketplace_assets
    from orchestration.threaded_executor import PULL_TAG

    listed = list(load_channels().of_kind("marketplace"))
    priority = {}
    for asset in marketplace_assets():
        tags = asset.op.tags
        assert tags[PULL_TAG] == "true"
        priority[asset.key.path[-1].removesuffix("_orders")] = int(tags["dagster/priority"])
    assert sorted(priority, key=priority.get, reverse=True) == listed
    assert min(priority.values()) > 0  # before the steps of no priority, as ready steps go


def test_a_step_with_more_downstream_goes_first(tmp_path: Path, monkeypatch) -> None:
    result = _run("chain_job", tmp_path, monkeypatch, max_concurrent=1)
    assert result.success
    started = [
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START
    ]
    # five leaves sort before it by name, and Dagster's own key would take any of the six
    assert started[0] == "z_root"
    assert len(started) == 7


def test_max_concurrent_below_one_is_refused_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="max_concurrent must be at least 1, got 0: set"):
        _run("meeting_job", tmp_path, monkeypatch, max_concurrent=0)
    assert not (tmp_path / "left").exists()  # no step ran


def test_an_interrupt_stops_the_running_steps_and_the_run(tmp_path: Path) -> None:
    env = {**os.environ, "THREADED_TEST_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(JOBS)], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "slow").exists():
        assert child.poll() is None and time.monotonic() < deadline, "the slow step never began"
        time.sleep(0.1)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)  # what Dagster sends a run worker to cancel its run
    out, _ = child.communicate(timeout=30)  # well before the step's minute is up
    assert "failed slow ErrorSource.INTERRUPT" in out, out
    assert "succeeded quick" in out, out
    assert not (tmp_path / "slow_finished").exists()
    assert "run status CANCELED" in out or "run status FAILURE" in out, out
