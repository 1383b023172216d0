"""PostgreSQL restarted in the middle of a load: a real ingestion process (`python -m
connectors.ingest`) pulling from the sandbox's gateway into a server of the test's own, which is
stopped and started again while the process loads. The run fails cleanly (non-zero exit, nothing
half-committed, the committed windows kept); the next run completes; raw equals the truth."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from connectors.ingest import WAREHOUSE_URL_ENV
from connectors.ingest import main as ingest_main
from connectors.raw_loader import read_cursor
from kernel.database import EmbeddedServer
from sandbox.faults import FaultConfig
from tests.connectors import platform_truth
from tests.faults.ground_truth import assert_raw_equals_truth, truth_of

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "pdd"  # 30-minute windows: the cursor commits many times in a pull
TABLE = f"raw.{CHANNEL}_orders"


def _command(sandbox_file: Path, days: int) -> list[str]:
    return [
        sys.executable, "-m", "connectors.ingest", CHANNEL,
        "--sandbox-file", str(sandbox_file), "--days", str(days),
        "--page-size", "3", "--batch-rows", "10", "--settle-seconds", "0",
        "--timeout", "5", "--fast-retries",
    ]  # fmt: skip


def _wait_for_committed_rows(url: str, proc: subprocess.Popen, seconds: float = 60) -> int:
    """Rows in raw once the process has committed a window with orders in it."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            if conn.execute("select to_regclass(%s)", [TABLE]).fetchone()[0]:
                rows = conn.execute(f"select count(*) from {TABLE}").fetchone()[0]
                if rows and read_cursor(conn, CHANNEL) is not None:
                    return rows
            time.sleep(0.05)
    raise AssertionError("the run committed nothing before it ended or within a minute")


@pytest.mark.slow  # about 8 s: a server of its own, an ingestion process, a run in process
def test_postgres_restarted_mid_load_fails_cleanly_and_the_next_run_completes(
    private_pg: EmbeddedServer,
    fault_sandbox,  # noqa: ANN001 (a Sandbox)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # slow answers (under the client's time-out) stretch the pull so the restart lands mid-way
    fault_sandbox.set_faults(CHANNEL, FaultConfig(slow=0.3, slow_seconds=0.1, seed=3))
    truth = truth_of(fault_sandbox.truth()["orders"], CHANNEL)
    url = private_pg.conn().url()
    env = {**os.environ, WAREHOUSE_URL_ENV: url}
    command = _command(fault_sandbox.home / "sandbox.json", fault_sandbox.days + 1)

    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for_committed_rows(url, first)
            assert first.poll() is None, "the run finished before the restart"
            private_pg.stop()  # fast shutdown: the process's session is terminated
            private_pg.start()
            code = first.wait(timeout=60)
        finally:
            if first.poll() is None:
                first.send_signal(signal.SIGKILL)
                first.wait()
    output = log.read_text()
    assert code == 1, output[-2000:]
    # one line that says what happened and what to do; no traceback, no password
    assert f"{CHANNEL}: the warehouse connection was lost" in output
    assert "run again to resume from the cursor" in output
    assert "Traceback" not in output and private_pg.password not in output

    with psycopg.connect(url, autocommit=True) as conn:
        kept = conn.execute(f"select count(*) from {TABLE}").fetchone()[0]
        [(first_run,)] = conn.execute(f"select distinct run_id from {TABLE}").fetchall()
        cursor = read_cursor(conn, CHANNEL)
        assert 0 < kept < len(truth) and cursor is not None

        fault_sandbox.set_faults(CHANNEL, FaultConfig())
        # the next run: the same command, in this process (a second interpreter costs seconds)
        monkeypatch.setenv(WAREHOUSE_URL_ENV, url)
        assert ingest_main(command[3:]) == 0
        report = ast.literal_eval(capsys.readouterr().out.strip().splitlines()[-1])
        untouched = conn.execute(
            f"select count(*) from {TABLE} where run_id = %s", [first_run]
        ).fetchone()[0]
        assert assert_raw_equals_truth(conn, CHANNEL, truth, platform_truth.pdd) == len(truth)
    # the next run resumed at the cursor committed before the restart, not from scratch, and
    # left the rows committed before it as they were
    assert report["cursor_before"] == cursor.isoformat()
    assert untouched == kept and report["inserted"] == len(truth) - kept
