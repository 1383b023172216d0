"""A reviewer's decision on a held order: recorded once with reviewer, time and note; never
overwritten; an unknown or ambiguous order is refused with what to do; `orderpulse review`
says what happens next and fails in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.review import ReviewError, record_review

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def queue(fresh_db):
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_ops_tables(conn)
        conn.execute(
            "insert into ops.review_queue (channel, platform_order_no, score, hold_until, "
            "queued_at) values ('taobao', 'T1', 91, %(h)s, %(q)s), ('jd', 'X9', 85, %(h)s, %(q)s),"
            " ('pdd', 'X9', 83, %(h)s, %(q)s)",
            {"h": datetime(2026, 12, 7, tzinfo=UTC), "q": datetime(2026, 12, 4, tzinfo=UTC)},
        )
    return fresh_db


def _row(url: str, channel: str, no: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select decision, reviewer, decided_at, note from ops.review_queue "
            "where channel = %s and platform_order_no = %s",
            (channel, no),
        ).fetchone()


def test_a_release_is_recorded_once_with_reviewer_time_and_note(queue) -> None:
    with psycopg.connect(queue.url()) as conn:
        done = record_review(conn, "T1", "release", "li.wei", NOW, note="known customer")
        assert (done.channel, done.score) == ("taobao", 91.0)
        assert "routing decides it" in done.next_step
        with pytest.raises(ReviewError, match="already decided .release, by li.wei"):
            record_review(conn, "taobao:T1", "intercept", "zhang.san", NOW)
    assert _row(queue.url(), "taobao", "T1") == ("release", "li.wei", NOW, "known customer")


def test_unknown_and_ambiguous_orders_are_refused_with_the_way_out(queue) -> None:
    with psycopg.connect(queue.url()) as conn:
        with pytest.raises(ReviewError, match="not in ops.review_queue"):
            record_review(conn, "NOPE", "release", "li.wei", NOW)
        with pytest.raises(ReviewError, match=r"several channels \(jd, pdd\).*jd:X9"):
            record_review(conn, "X9", "intercept", "li.wei", NOW)
        done = record_review(conn, "X9", "intercept", "li.wei", NOW, channel="pdd")
        assert done.channel == "pdd" and "releases its stock" in done.next_step
    assert _row(queue.url(), "pdd", "X9")[0] == "intercept"
    assert _row(queue.url(), "jd", "X9")[0] is None


def test_the_review_command_reports_the_next_step_and_fails_in_one_line(queue, tmp_path) -> None:
    env = {**os.environ, "ORDERPULSE_PG_URL": queue.url(), "NO_COLOR": "1", "COLUMNS": "300",
           "ORDERPULSE_HOME": str(tmp_path / "home")}  # fmt: skip
    cli = [str(Path(sys.executable).parent / "orderpulse"), "review"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True,
                              timeout=120, cwd=REPO)  # fmt: skip

    done = run("jd:X9", "--intercept", "--reviewer", "wang.fang", "--note", "stolen card")
    assert done.returncode == 0, done.stderr
    assert "jd:X9 intercepted by wang.fang" in done.stdout
    assert "Dagster was not told" not in done.stderr, done.stderr  # automation hears of it
    assert _row(queue.url(), "jd", "X9")[:2] == ("intercept", "wang.fang")
    again = run("jd:X9", "--release", "--reviewer", "li.wei")
    assert again.returncode == 1
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "never overwritten" in lines[0], again.stderr
    both = run("T1", "--release", "--intercept")
    assert both.returncode == 2 and "exactly one of --release and --intercept" in both.stderr
