"""A pull in a process of its own (connectors/pull_process.py), against the sandbox's gateway
over real HTTP into a real PostgreSQL: it loads the channel's truth and reports its progress
here; its error comes back as the same error, secrets left out; an interrupted pull takes its
process and its connection with it."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import threading
import time
from datetime import timedelta

import psycopg
import pytest

from connectors.http import IngestError
from connectors.ingest import IngestProgress
from connectors.pull_process import PullJob, PullProcessError, pull_in_process
from connectors.raw_schema import ensure_raw_tables
from tests.connectors.sandbox_env import SandboxEnv

CHANNEL = "jd"


def _job(env: SandboxEnv, url: str, **changes) -> PullJob:  # noqa: ANN003
    fields = dict(
        channel=CHANNEL,
        warehouse_url=url,
        sandbox_file=env.sandbox_file,
        run_id="test-pull-process",
        lag=timedelta(minutes=5),
        backfill_days=env.days + 1,
        settle=timedelta(0),  # the sandbox's world ends before now
    )
    return PullJob(**{**fields, **changes})


def _pull_processes() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("pull:")]


def test_a_pull_in_its_own_process_loads_the_channels_truth(fresh_db, sandbox_env_factory):
    env: SandboxEnv = sandbox_env_factory()
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, [CHANNEL])
    seen: list[IngestProgress] = []
    report = pull_in_process(_job(env, fresh_db.url()), on_progress=seen.append)
    with psycopg.connect(fresh_db.url()) as conn:
        loaded = {r[0] for r in conn.execute(f"select platform_order_no from raw.{CHANNEL}_orders")}
    truth = env.truth(CHANNEL)
    assert loaded == set(truth)
    assert report.inserted == len(truth) and report.channel == CHANNEL
    assert report.cursor_after is not None
    # progress arrives here as the pull goes, one report per window
    assert len(seen) == report.windows and seen[-1].pages == report.pages
    assert not _pull_processes()
    # a second pull resumes from the committed cursor: nothing new
    again = pull_in_process(_job(env, fresh_db.url()))
    assert again.inserted == 0 and again.cursor_before is not None


def test_an_error_in_the_pull_process_comes_back_as_itself(fresh_db, sandbox_env_factory):
    env: SandboxEnv = sandbox_env_factory()
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, [CHANNEL])
    wrong = "wrong-secret-0123456789abcdef"
    job = _job(env, fresh_db.url(), environ={"ORDERPULSE_JD_APP_SECRET": wrong})
    with pytest.raises(IngestError) as caught:
        pull_in_process(job)
    assert caught.value.channel == CHANNEL and caught.value.code
    assert wrong not in str(caught.value)
    assert any("in the pull process" in note for note in caught.value.__notes__)
    with pytest.raises(psycopg.OperationalError, match="127.0.0.1"):
        pull_in_process(_job(env, "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2"))
    assert not _pull_processes()


def test_a_pull_process_killed_midway_is_an_error_here(fresh_db, sandbox_env_factory):
    env: SandboxEnv = sandbox_env_factory()
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["taobao"])

    def kill(progress: IngestProgress) -> None:  # as the OOM killer would
        for process in _pull_processes():
            os.kill(process.pid, signal.SIGKILL)

    with pytest.raises(PullProcessError, match="ended without an answer .exit code -9"):
        pull_in_process(_job(env, fresh_db.url(), channel="taobao"), on_progress=kill)
    assert not _pull_processes()


def test_an_interrupted_pull_stops_its_process_and_its_connection(fresh_db, sandbox_env_factory):
    env: SandboxEnv = sandbox_env_factory()
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["taobao"])

    class Interrupted(Exception):
        pass

    def interrupt(progress: IngestProgress) -> None:
        raise Interrupted  # as a cancelled run's step sees its interrupt

    # Taobao's windows are a day at most: days are left when the first one's progress arrives
    with pytest.raises(Interrupted):
        pull_in_process(_job(env, fresh_db.url(), channel="taobao"), on_progress=interrupt)
    assert not _pull_processes()
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        others = "select count(*) from pg_stat_activity where datname = current_database() "
        others += "and pid <> pg_backend_pid()"
        deadline = time.monotonic() + 10
        while conn.execute(others).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert conn.execute(others).fetchone()[0] == 0
        loaded = conn.execute("select count(*) from raw.taobao_orders").fetchone()[0]
    assert loaded < len(env.truth("taobao"))


def test_an_interrupt_reaches_a_parent_waiting_on_a_silent_pull(sandbox_env_factory) -> None:
    """A cancelled run raises its interrupt in the step's thread (as the threaded executor
    does): it must be seen while the pull is busy and sends nothing (here: connecting to a
    warehouse that accepts the connection and never answers), and it stops the pull."""
    env: SandboxEnv = sandbox_env_factory()

    class Interrupted(Exception):
        pass

    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        url = f"postgresql://nobody@127.0.0.1:{port}/none?connect_timeout=60"
        outcome: list[BaseException] = []

        def step() -> None:
            try:
                pull_in_process(_job(env, url))
            except BaseException as err:  # noqa: BLE001 (what the step saw)
                outcome.append(err)

        thread = threading.Thread(target=step)
        thread.start()
        deadline = time.monotonic() + 10
        while not _pull_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pull_processes(), "the pull process never started"
        time.sleep(0.3)  # the child is now waiting on the silent server
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(Interrupted)
        )
        thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted)
    assert not _pull_processes()
