"""dbt forked warm (kernel/warm_dbt.py): `orderpulse-dbt` answers as the ordinary dbt does
(output, exit code), hands an interrupt to the dbt it started, ends that dbt when it dies
itself, and runs dbt cold when no server can serve it. Each test has a server of its own
(TMPDIR of its own), stopped at the end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from kernel.database import PgConn
from orchestration.resources import dbt_executable

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "dbt_project"


@pytest.fixture()
def scratch() -> Iterator[Path]:
    """A short TMPDIR (a Unix socket's path has at most 107 bytes); its server stopped."""
    folder = Path(tempfile.mkdtemp(prefix="opw-", dir="/tmp"))
    yield folder
    for process in psutil.process_iter(["cmdline"]):
        if any(str(folder) in part for part in process.info["cmdline"] or []):
            for child in process.children(recursive=True) + [process]:
                child.kill()
    shutil.rmtree(folder, ignore_errors=True)


def _env(scratch: Path, warm: bool, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TMPDIR": str(scratch),
        "ORDERPULSE_DBT_WARM": "1" if warm else "0",
        "ORDERPULSE_DBT_WARM_IDLE": "60",
        **extra,
    }


def _dbt(scratch: Path, warm: bool, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [dbt_executable(), *args],
        cwd=PROJECT,
        env=_env(scratch, warm, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _servers(scratch: Path) -> list[psutil.Process]:
    """The servers of `scratch`'s socket (their handlers and dbts, forked, have the same
    command line: a server is one whose parent is not one of them)."""
    forks = {
        p.pid: p
        for p in psutil.process_iter(["cmdline", "ppid"])
        if "--serve" in (p.info["cmdline"] or []) and str(scratch) in " ".join(p.info["cmdline"])
    }
    return [p for p in forks.values() if p.info["ppid"] not in forks]


def test_a_warm_dbt_answers_as_the_ordinary_one(scratch: Path) -> None:
    listing = ("ls", "--resource-type", "seed", "--output", "name", "--quiet")
    cold = _dbt(scratch, False, *listing)
    assert cold.returncode == 0, cold.stderr
    assert not _servers(scratch)
    first = _dbt(scratch, True, *listing)  # starts the server
    second = _dbt(scratch, True, *listing)  # forked by it
    assert len(_servers(scratch)) == 1
    assert first.stdout == second.stdout == cold.stdout
    assert "unified_statuses" in cold.stdout.split()
    assert first.returncode == second.returncode == 0

    cold_error = _dbt(scratch, False, "ls", "--no-such-flag")
    warm_error = _dbt(scratch, True, "ls", "--no-such-flag")
    assert cold_error.returncode == warm_error.returncode == 2  # click's usage error
    assert "No such option" in cold_error.stderr and "No such option" in warm_error.stderr


def _sleeping_dbt(scratch: Path, pg: PgConn) -> tuple[subprocess.Popen, psutil.Process]:
    """A warm `dbt show` waiting on a 60 s query; the caller and the forked dbt."""
    caller = subprocess.Popen(
        [dbt_executable(), "show", "--inline", "select 1 as one from pg_sleep(60)"],
        cwd=PROJECT,
        env=_env(scratch, True, **pg.env()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        forked = [
            grandchild
            for server in _servers(scratch)
            for handler in server.children()
            for grandchild in handler.children()
        ]
        if forked:
            return caller, forked[0]
        time.sleep(0.1)
    caller.kill()
    raise AssertionError("no dbt was forked")


def test_an_interrupt_reaches_the_forked_dbt(scratch: Path, pg: PgConn) -> None:
    caller, forked = _sleeping_dbt(scratch, pg)
    time.sleep(3)  # dbt is in its query by now (or still starting: an interrupt either way)
    assert caller.poll() is None and forked.is_running()
    caller.send_signal(signal.SIGINT)  # as dagster-dbt interrupts dbt
    code = caller.wait(timeout=30)  # long before the query's 60 s
    assert code != 0
    forked.wait(timeout=10)


def test_a_dead_caller_takes_its_forked_dbt_with_it(scratch: Path, pg: PgConn) -> None:
    caller, forked = _sleeping_dbt(scratch, pg)
    caller.kill()  # SIGKILL: no chance to pass anything on
    caller.wait(timeout=10)
    forked.wait(timeout=15)  # psutil.TimeoutExpired if it lived on
    assert len(_servers(scratch)) == 1  # the server serves on


def test_without_a_server_dbt_runs_the_ordinary_way(scratch: Path) -> None:
    # a socket path longer than a Unix socket may have: the server cannot listen
    deep = scratch / ("d" * 100)
    deep.mkdir()
    done = _dbt(deep, True, "--version")
    assert done.returncode == 0, done.stderr
    assert "installed:" in done.stdout
    assert not _servers(deep)


def test_a_server_that_does_not_answer_is_no_server(scratch: Path, monkeypatch) -> None:
    """A hung server (it accepts, then says nothing) makes the caller give up and run dbt the
    ordinary way instead of waiting for ever."""
    import socket

    from kernel import warm_dbt

    path = scratch / "hung.sock"
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(str(path))
    hung.listen(4)
    monkeypatch.setattr(warm_dbt, "socket_path", lambda: path)
    monkeypatch.setattr(warm_dbt, "ANSWER_SECONDS", 0.5)
    try:
        began = time.monotonic()
        with pytest.raises(warm_dbt.NotServed, match="did not answer"):
            warm_dbt.run(["--version"])
        assert time.monotonic() - began < 10
    finally:
        hung.close()
