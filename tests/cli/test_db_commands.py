"""`orderpulse db url` prints a URL that the wheel's psql can query; start twice reuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel.database import psql_path

BIN = Path(sys.executable).parent


def _orderpulse(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERPULSE_")}
    env["ORDERPULSE_HOME"] = str(home)
    return subprocess.run(
        [str(BIN / "orderpulse"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_db_url_psql_and_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _orderpulse(home, "db", "url")
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url
    try:
        again = _orderpulse(home, "db", "url")  # reuses the running server
        assert again.stdout.strip() == url
        query = subprocess.run(
            [str(psql_path()), url, "-At", "-c",
             "select string_agg(schema_name, ',' order by schema_name) "
             "from information_schema.schemata "
             "where schema_name in ('raw','staging','intermediate','marts','ops')"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert query.returncode == 0, query.stderr
        assert query.stdout.strip() == "intermediate,marts,ops,raw,staging"
    finally:
        stopped = _orderpulse(home, "db", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert "not running" in _orderpulse(home, "db", "stop").stdout
