"""`orderpulse backfill` pulls the chosen marketplaces from a running sandbox into raw, with
the same result as the truth; a repeat changes nothing; a bad channel fails in one line before
anything is pulled."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sandbox.server import Sandbox

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "orderpulse"

pytestmark = pytest.mark.slow


def _raw(url: str, channel: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        try:
            return dict(conn.execute(
                f"select platform_order_no, content_hash from raw.{channel}_orders"
            ).fetchall())  # fmt: skip
        except psycopg.errors.UndefinedTable:
            return {}


def test_backfill_pulls_the_chosen_marketplaces_and_a_repeat_changes_nothing(
    fresh_db, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERPULSE_", "DAGSTER_"))}
    env |= {"ORDERPULSE_HOME": str(home), "ORDERPULSE_PG_URL": fresh_db.url(),
            "NO_COLOR": "1", "COLUMNS": "200"}  # fmt: skip

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(CLI), "backfill", *args], env=env, capture_output=True,
                              text=True, timeout=600, cwd=REPO)  # fmt: skip

    bad = run("--channel", "nosuch")
    assert bad.returncode == 2 and "not a marketplace" in bad.stderr, bad.stderr
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with Sandbox(home, seed=3, orders=120, days=2, end=end) as sandbox:
        truth = {(o["channel"], o["platform_order_no"]) for o in sandbox.truth()["orders"]}
        done = run("--days", "3", "--channel", "taobao", "--channel", "jd", "--no-downstream")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "backfill: taobao, jd over the last 3 days" in done.stdout
        first = {c: _raw(fresh_db.url(), c) for c in ("taobao", "jd", "pdd")}
        again = run("--days", "3", "--channel", "taobao", "--channel", "jd", "--no-downstream")
        assert again.returncode == 0, again.stderr[-3000:]
    for channel in ("taobao", "jd"):
        want = {no for c, no in truth if c == channel}
        assert want and set(first[channel]) == want, channel
        # the repeat changed nothing
        assert _raw(fresh_db.url(), channel) == first[channel]
    assert first["pdd"] == {}  # not chosen, not pulled
