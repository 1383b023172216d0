"""Jobs for test_threaded_executor.py, loaded from this file by path (a reconstructable job)."""

import os
import sys
import time
from pathlib import Path

import dagster as dg

from orchestration.threaded_executor import (
    GX_OP_TAGS,
    LOAD_OP_TAGS,
    PULL_OP_TAGS,
    threaded_executor,
)


def _meet(name: str) -> float:
    """Leave a mark, then wait for the other step's (both must be running at once)."""
    folder = Path(os.environ["THREADED_TEST_DIR"])
    (folder / name).write_text(str(time.time()))
    other = folder / ("right" if name == "left" else "left")
    deadline = time.monotonic() + float(os.environ.get("THREADED_TEST_WAIT", "20"))
    while not other.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the other step never started while this one ran")
        time.sleep(0.05)
    return time.time()


@dg.asset
def left() -> float:
    return _meet("left")


@dg.asset
def right() -> float:
    return _meet("right")


@dg.asset
def joined(left: float, right: float) -> float:
    # what the steps' threads run under (test_the_steps_hand_the_interpreter_lock_round_often)
    Path(os.environ["THREADED_TEST_DIR"], "switch_interval").write_text(
        str(sys.getswitchinterval())
    )
    return max(left, right)


@dg.asset
def broken() -> None:
    raise ValueError("this step fails on purpose")


@dg.asset(deps=[broken])
def after_broken() -> None:
    Path(os.environ["THREADED_TEST_DIR"], "after_broken").write_text("ran")


@dg.asset
def fine() -> None:
    time.sleep(0.5)
    Path(os.environ["THREADED_TEST_DIR"], "fine").write_text("ran")


def meeting_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[left, right, joined],
        jobs=[dg.define_asset_job("meeting", executor_def=threaded_executor)],
    )
    return defs.resolve_job_def("meeting")


def failing_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[broken, after_broken, fine],
        jobs=[dg.define_asset_job("failing", executor_def=threaded_executor)],
    )
    return defs.resolve_job_def("failing")


@dg.asset
def slow() -> None:
    Path(os.environ["THREADED_TEST_DIR"], "slow").write_text("started")
    for _ in range(600):  # a minute in short sleeps, as a pull between its pages
        time.sleep(0.1)
    Path(os.environ["THREADED_TEST_DIR"], "slow_finished").write_text("ran")


@dg.asset
def quick() -> None:
    Path(os.environ["THREADED_TEST_DIR"], "quick").write_text("ran")


def slow_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[slow, quick],
        jobs=[dg.define_asset_job("slow", executor_def=threaded_executor)],
    )
    return defs.resolve_job_def("slow")


def run_slow_job() -> None:
    """Run `slow_job` and print how each step and the run ended (for the interrupt test)."""
    from dagster._core.definitions.reconstruct import ReconstructableJob

    recon = ReconstructableJob.for_file(__file__, "slow_job")
    with dg.instance_for_test() as instance:
        try:
            with dg.execute_job(recon, instance=instance) as result:
                for event in result.all_events:
                    if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                        print("failed", event.step_key, event.step_failure_data.error_source)
                    if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                        print("succeeded", event.step_key)
                print("run success", result.success)
        except BaseException as exc:  # the interrupt reaches the caller
            print("run raised", type(exc).__name__)
        runs = instance.get_runs()
        print("run status", runs[0].status.value if runs else None)


def _leaf(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name)
    def _asset() -> None:
        pass

    return _asset


LEAVES = [_leaf(f"a_leaf_{n}") for n in range(5)]


@dg.asset
def z_root() -> None:
    pass


@dg.asset(deps=[z_root])
def z_child() -> None:
    pass


def chain_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[*LEAVES, z_root, z_child],
        jobs=[dg.define_asset_job("chain", executor_def=threaded_executor)],
    )
    return defs.resolve_job_def("chain")


def _tagged_meeting_job(name: str, op_tags: dict[str, str]) -> dg.JobDefinition:
    """`left` and `right` meeting, both steps carrying `op_tags`."""

    @dg.asset(name=f"{name}_left", op_tags=op_tags)
    def tagged_left() -> float:
        return _meet("left")

    @dg.asset(name=f"{name}_right", op_tags=op_tags)
    def tagged_right() -> float:
        return _meet("right")

    defs = dg.Definitions(
        assets=[tagged_left, tagged_right],
        jobs=[dg.define_asset_job(name, executor_def=threaded_executor)],
    )
    return defs.resolve_job_def(name)


def load_meeting_job() -> dg.JobDefinition:
    return _tagged_meeting_job("load_meeting", LOAD_OP_TAGS)


def check_meeting_job() -> dg.JobDefinition:
    return _tagged_meeting_job("check_meeting", GX_OP_TAGS)


def pull_meeting_job() -> dg.JobDefinition:
    return _tagged_meeting_job("pull_meeting", PULL_OP_TAGS)


if __name__ == "__main__":
    run_slow_job()
