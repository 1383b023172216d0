"""A dbt that outlives the killed Dagster step which started it would build on behind the run's
retry: OrderPulse starts dbt through `orderpulse-dbt`, which the kernel ends (SIGTERM) when its
parent dies (kernel/tied_child.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration.resources import dbt_executable

# A host standing for the step process: starts the command as its child, says the child's pid,
# then waits to be killed.
HOST = """
import subprocess, sys, time
child = subprocess.Popen(sys.argv[1:])
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _orphan_after_host_killed(command: list[str]) -> bool:
    """Start `command` under a host process, SIGKILL the host, and say whether the command
    still runs 5 s later (it is killed either way before returning)."""
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, *command], stdout=subprocess.PIPE, text=True
    )
    child = int(host.stdout.readline())
    try:
        time.sleep(0.5)  # the child has tied itself (or not) by now
        assert _alive(child)
        host.kill()
        host.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        return _alive(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_tied_child_dies_with_the_process_that_started_it() -> None:
    tie = "from kernel.tied_child import exec_tied; exec_tied(['/bin/sleep', '120'])"
    tied = [sys.executable, "-c", tie]
    assert _orphan_after_host_killed(["/bin/sleep", "120"])  # untied: an orphan lives on
    assert not _orphan_after_host_killed(tied)


def test_dagster_starts_dbt_through_the_tied_launcher() -> None:
    executable = Path(dbt_executable())
    assert executable.name == "orderpulse-dbt"
    done = subprocess.run([str(executable), "--version"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "installed:" in done.stdout  # dbt's own version report
