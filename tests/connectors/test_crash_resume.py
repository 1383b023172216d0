"""A real ingestion process (`python -m connectors.ingest`) killed with SIGKILL mid-run: the next
run resumes from the committed cursor and completes the set, with no gap and no duplicate."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from connectors.raw_loader import read_cursor
from sandbox.faults import FaultConfig
from tests.connectors import platform_truth
from tests.faults.ground_truth import assert_raw_equals_truth

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "pdd"  # 30-minute windows: a three-day pull commits its cursor many times


def _command(sandbox_file: Path, days: int) -> list[str]:
    return [
        sys.executable, "-m", "connectors.ingest", CHANNEL,
        "--sandbox-file", str(sandbox_file), "--days", str(days),
        "--page-size", "3", "--batch-rows", "20", "--settle-seconds", "0",
        "--timeout", "5", "--fast-retries",
    ]  # fmt: skip


def test_sigkilled_ingest_resumes_without_gap_or_duplicate(
    fresh_db, sandbox_env_factory, tmp_path
) -> None:
    # slow answers (below the client timeout) stretch the run so it can be killed mid-way
    env = sandbox_env_factory(faults={CHANNEL: FaultConfig(slow=0.5, slow_seconds=0.15, seed=3)})
    truth = env.truth(CHANNEL)
    command = _command(env.sandbox_file, env.days + 1)
    # the warehouse URL (password included) comes from the environment, never the command line
    proc_env = {**os.environ, "ORDERPULSE_WAREHOUSE_URL": fresh_db.url()}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=proc_env)
    cmdline = Path(f"/proc/{first.pid}/cmdline").read_bytes().decode()
    assert fresh_db.url() not in cmdline and "postgresql" not in cmdline

    table = f"raw.{CHANNEL}_orders"
    deadline = time.monotonic() + 60
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        cursor = None
        while time.monotonic() < deadline and first.poll() is None:
            exists = conn.execute("select to_regclass(%s)", [table]).fetchone()[0]
            cursor = read_cursor(conn, CHANNEL) if exists else None
            if cursor is not None and conn.execute(f"select count(*) from {table}").fetchone()[0]:
                break  # windows with orders in them are committed
            time.sleep(0.05)
        assert first.poll() is None, "the run finished before it could be killed"
        assert cursor is not None, "no window was committed within a minute"
        time.sleep(0.3)  # let it get further, into an uncommitted batch
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        log.close()

        cursor_at_kill = read_cursor(conn, CHANNEL)
        partial = conn.execute(f"select count(*) from {table}").fetchone()[0]
        first_run = conn.execute(f"select distinct run_id from {table}").fetchall()
        assert 0 < partial < len(truth)
        assert len(first_run) == 1

        env.reset()  # no faults for the resumed run
        second = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=120, env=proc_env
        )
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
        report = ast.literal_eval(second.stdout.strip().splitlines()[-1])

        rows = conn.execute(f"select platform_order_no from {table}").fetchall()
        kept = conn.execute(
            f"select count(*) from {table} where run_id = %s", [first_run[0][0]]
        ).fetchone()[0]
        # every order once, in the truth's latest version (status and paid amount)
        assert_raw_equals_truth(conn, CHANNEL, truth, platform_truth.pdd)

    numbers = [no for (no,) in rows]
    assert len(numbers) == len(set(numbers)) == len(truth)
    assert set(numbers) == set(truth)
    # the second run resumed at the committed cursor (minus the 5-minute overlap), not from
    # scratch, and left every row the killed run had committed untouched
    assert report["cursor_before"] == cursor_at_kill.isoformat()
    lag = timedelta(minutes=5)
    assert report["first_window_start"] == (cursor_at_kill - lag).replace(microsecond=0).isoformat()
    assert kept == partial
    assert report["inserted"] == len(truth) - partial
