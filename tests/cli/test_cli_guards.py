"""The CLI protects the data: a bad argument, a broken rule file or a refused reset leave the
warehouse (and the home's files) exactly as they were, with a non-zero exit code and one
line per error; `--debug` shows the traceback. Real subprocesses on an external warehouse
(a scratch database on the session's PostgreSQL), so nothing embedded starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from kernel.database import PgConn

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).resolve().parents[2] / "config"


def _orderpulse(
    home: Path, warehouse: PgConn, *args: str, config: Path | None = None, **kwargs
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env.update(ORDERPULSE_HOME=str(home), ORDERPULSE_PG_URL=warehouse.url(), COLUMNS="100")
    if config is not None:
        env["ORDERPULSE_CONFIG_DIR"] = str(config)
    return subprocess.run(
        [str(BIN / "orderpulse"), *args], env=env, capture_output=not kwargs, text=True,
        timeout=120, **kwargs,
    )  # fmt: skip


@pytest.fixture()
def kept(fresh_db: PgConn, tmp_path: Path) -> tuple[PgConn, Path]:
    """A warehouse with rows in raw and marts, and a home with a POS file in its drop folder."""
    with psycopg.connect(fresh_db.url()) as db:
        for schema in ("raw", "marts"):
            db.execute(f"create table {schema}.keepsake (id int primary key)")
            db.execute(f"insert into {schema}.keepsake select generate_series(1, 5)")
    home = tmp_path / "home"
    (home / "drop" / "pos").mkdir(parents=True)
    (home / "drop" / "pos" / "receipts.csv").write_text("小票号\nPOS-1\n", "utf-8")
    return fresh_db, home


def _assert_untouched(warehouse: PgConn, home: Path) -> None:
    with psycopg.connect(warehouse.url()) as db:
        for schema in ("raw", "marts"):
            count = db.execute(f"select count(*) from {schema}.keepsake").fetchone()[0]
            assert count == 5, f"{schema}.keepsake lost rows"
    assert (home / "drop" / "pos" / "receipts.csv").exists()


@pytest.mark.parametrize("bad", [["--orders", "-5"], ["--days", "0"], ["--seed", "-1"]])
def test_a_bad_argument_changes_nothing_and_says_so_in_one_line(kept, bad: list[str]) -> None:
    warehouse, home = kept
    result = _orderpulse(home, warehouse, "demo", "--reset", "--yes", *bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert bad[0] in lines[0] and "greater than or equal" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    _assert_untouched(warehouse, home)


def test_a_broken_rule_file_changes_nothing_and_debug_shows_the_traceback(
    kept, tmp_path: Path
) -> None:
    warehouse, home = kept
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    text = (config / "channels.yaml").read_text("utf-8")
    assert "page_size: 100" in text
    (config / "channels.yaml").write_text(text.replace("page_size: 100", "page_size: -1"))

    result = _orderpulse(home, warehouse, "demo", "--reset", "--yes", config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    problem = [line for line in result.stderr.splitlines() if "invalid config" in line]
    assert problem == [
        f"invalid config: {config / 'channels.yaml'}: defaults.page_size: Input should be "
        "greater than or equal to 1 (got -1)"
    ]
    _assert_untouched(warehouse, home)

    debug = _orderpulse(home, warehouse, "--debug", "demo", "--reset", "--yes", config=config)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "kernel.config.ConfigError" in debug.stderr
    _assert_untouched(warehouse, home)


def test_the_reset_says_what_it_removes_and_a_no_in_a_terminal_keeps_it(kept) -> None:
    warehouse, home = kept
    controller, terminal = os.openpty()
    try:
        os.write(controller, b"n\n")  # the answer waits in the terminal's line buffer
        result = _orderpulse(
            home, warehouse, "demo", "--reset", stdin=terminal, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(controller)
        os.close(terminal)
    out, errors = result.stdout, result.stderr
    assert result.returncode == 1, out + errors
    said = " ".join(out.split())
    assert "raw (1 tables)" in said and "marts (1 tables)" in said
    assert f"{home / 'drop'}: 1 files (POS drop folder)" in said
    assert "SFTP exports" in said and "ingest cursors" in said
    assert "Remove all of this?" in said
    assert "nothing was removed" in " ".join(errors.split())
    _assert_untouched(warehouse, home)


def test_an_unreachable_warehouse_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path,
) -> None:
    nowhere = PgConn("127.0.0.1", 1, "nobody", "secret", "nothing")  # port 1: refused
    home = tmp_path / "home"
    result = _orderpulse(home, nowhere, "demo", "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach PostgreSQL at postgresql://nobody:***@")
    assert "secret" not in result.stderr + result.stdout

    debug = _orderpulse(home, nowhere, "--debug", "demo", "--yes")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "DatabaseError" in debug.stderr


def test_demo_on_a_running_sandbox_needs_one_and_never_resets(kept) -> None:
    warehouse, home = kept
    result = _orderpulse(home, warehouse, "demo", "--sandbox-running", "--yes")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "sandbox.json" in lines[0] and "orderpulse sandbox serve" in lines[0]

    # a sandbox.json whose gateways are gone (port 1: refused) is no running sandbox
    (home / "sandbox.json").write_text(
        '{"channels": {"taobao": {"base_url": "http://127.0.0.1:1/router/rest"}},'
        ' "generated": {"end": "2026-12-01T00:00:00+00:00", "days": 1}}'
    )
    stale = _orderpulse(home, warehouse, "demo", "--sandbox-running", "--yes")
    assert stale.returncode == 1
    assert "http://127.0.0.1:1/router/rest" in stale.stderr and "not running" in stale.stderr

    refused = _orderpulse(home, warehouse, "demo", "--sandbox-running", "--reset", "--yes")
    assert refused.returncode == 2
    assert "--reset" in refused.stderr and "running sandbox" in " ".join(refused.stderr.split())
    _assert_untouched(warehouse, home)
