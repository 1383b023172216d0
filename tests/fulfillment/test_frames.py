"""fulfillment.frames on a real PostgreSQL: what `copy_frame` writes reads back as the frame
held it, whatever the values (tabs, newlines, backslashes, the text `\\N`, missing values of
every type, time zones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from fulfillment.frames import (
    WHOLE_READ_WORK_MEM,
    allow_whole_reads,
    copy_frame,
    read_beside,
    read_frame,
    read_frame_by_copy,
    wrote_in_transaction,
)


def test_copy_frame_round_trips_every_kind_of_value(fresh_db) -> None:
    at = datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "name": ["plain", "tab\there", "two\nlines\r\n", "back\\slash", "\\N", "", None],
            "qty": [1, 2, 3, 4, 5, 6, 7],
            "score": [0.5, np.nan, -1.25, 1e-7, 3.0, 0.0, 2.5],
            "flag": [True, False, True, False, True, False, True],
            "at": pd.to_datetime([at + timedelta(hours=k) for k in range(6)] + [None], utc=True),
            "note": ["a", None, "中文", "b", None, "c", "d"],
        }
    )
    with psycopg.connect(fresh_db.url()) as conn:
        copy_frame(
            conn,
            "_frame_test",
            "name text, qty integer, score float8, flag boolean, at timestamptz, note text, "
            "absent text",
            frame,
        )
        back = read_frame(conn, "select * from _frame_test order by qty")
    assert back["name"].tolist() == frame["name"].tolist()
    assert back["qty"].tolist() == frame["qty"].tolist()
    assert back["score"].isna().tolist() == frame["score"].isna().tolist()
    assert back["score"].dropna().tolist() == frame["score"].dropna().tolist()
    assert back["flag"].tolist() == frame["flag"].tolist()
    assert pd.to_datetime(back["at"], utc=True).tolist()[:6] == frame["at"].tolist()[:6]
    assert back["at"].isna().tolist() == [False] * 6 + [True]
    assert back["note"].tolist() == frame["note"].tolist()
    assert back["absent"].isna().all()  # a ddl column the frame lacks is NULL


def test_copy_frame_of_an_empty_frame_makes_an_empty_table(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        copy_frame(conn, "_frame_empty", "sku text, qty integer", pd.DataFrame())
        assert conn.execute("select count(*) from _frame_empty").fetchone()[0] == 0


def test_read_frame_by_copy_reads_what_read_frame_reads(fresh_db) -> None:
    """The COPY reader against the tuple reader on text that looks like numbers or missing
    values, quotes and commas, numbers, NULLs and times stored in other zones."""
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute("set timezone = 'Asia/Shanghai'")
        conn.execute(
            "create temp table _copy_read (id text, province text, qty integer, hours float8, "
            "paid_at timestamptz)"
        )
        conn.execute(
            """insert into _copy_read values
            ('007', '四川省', 3, 1.5, '2026-12-01 08:30:15.123456+00'),
            ('NA', 'null', null, null, '2026-12-01 23:59:59+08'),
            ('a,"b"', 'two
lines', -2, 1e-7, null),
            ('x', null, 0, 0, '2026-06-30 12:00:00-05')"""
        )
        query = "select * from _copy_read where qty is distinct from %(skip)s order by id"
        expected = read_frame(conn, query, {"skip": 99})
        got = read_frame_by_copy(
            conn, query, {"skip": 99}, text=("id", "province"), times=("paid_at",)
        )
        empty = read_frame_by_copy(conn, "select * from _copy_read where false", text=("id",))
    assert got.columns.tolist() == expected.columns.tolist()
    assert got["id"].tolist() == expected["id"].tolist() == ["007", "NA", 'a,"b"', "x"]
    assert got["province"].tolist()[:3] == ["四川省", "null", "two\nlines"]
    assert got["province"].isna().tolist() == [False, False, False, True]
    assert got["qty"].isna().tolist() == expected["qty"].isna().tolist()
    assert got["qty"].dropna().tolist() == expected["qty"].dropna().tolist()
    assert got["hours"].dropna().tolist() == expected["hours"].dropna().astype(float).tolist()
    want = pd.to_datetime(expected["paid_at"], utc=True)
    assert got["paid_at"].isna().tolist() == want.isna().tolist()
    assert got["paid_at"].dropna().tolist() == want.dropna().tolist()
    assert str(got["paid_at"].dt.tz) == "UTC"
    assert empty.empty and empty.columns.tolist() == expected.columns.tolist()


def _plan(conn: psycopg.Connection) -> str:
    rows = conn.execute(
        "explain (analyze, costs off, timing off, summary off) "
        "select g, count(*) from generate_series(1, 400000) g group by 1 order by 2 desc, 1"
    ).fetchall()
    return "\n".join(row[0] for row in rows)


def test_whole_reads_get_their_memory_for_the_transaction_only(fresh_db) -> None:
    # a pass's sorts and hashes stay in memory; the server's setting is back after the pass
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        (default,) = conn.execute("show work_mem").fetchone()
        with conn.transaction():
            allow_whole_reads(conn)
            assert conn.execute("show work_mem").fetchone() == (WHOLE_READ_WORK_MEM,)
            in_memory = _plan(conn)
        assert conn.execute("show work_mem").fetchone() == (default,)
        with conn.transaction():
            spilled = _plan(conn)
    assert "Disk" in spilled  # 400,000 groups spill at the server's default of 4 MB
    assert "Disk" not in in_memory, in_memory


def test_a_read_beside_runs_in_another_backend_and_brings_its_error_back(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        (mine,) = conn.execute("select pg_backend_pid()").fetchone()
        assert not wrote_in_transaction(conn)
        beside = read_beside(
            conn, lambda c: read_frame(c, "select pg_backend_pid() as pid, %(x)s as x", {"x": 7})
        )
        by_copy = read_beside(
            conn, lambda c: read_frame_by_copy(c, "select 'a1' as t, 2.5 as n", text=("t",))
        )
        frame = beside.result(timeout=30)
        assert frame["pid"].iloc[0] != mine and frame["x"].iloc[0] == 7
        assert by_copy.result(timeout=30).to_dict("records") == [{"t": "a1", "n": 2.5}]
        with pytest.raises(psycopg.errors.UndefinedTable):
            read_beside(conn, lambda c: read_frame(c, "select * from no_such_table")).result(30)


def test_after_a_write_the_read_runs_in_the_transaction_that_can_see_it(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute("create table written_here (n integer)")
        conn.execute("insert into written_here values (1), (2)")
        assert wrote_in_transaction(conn)
        # another connection cannot see the table yet; inline, the read does
        with pytest.raises(psycopg.errors.UndefinedTable):
            read_beside(conn, lambda c: read_frame(c, "select * from written_here")).result(30)
        inline = read_beside(
            conn, lambda c: read_frame(c, "select sum(n) as n from written_here"), inline=True
        )
        assert inline.done() and inline.result()["n"].iloc[0] == 3
        conn.rollback()
