"""fulfillment.frames on a real PostgreSQL: what `copy_frame` writes reads back as the frame
held it, whatever the values (tabs, newlines, backslashes, the text `\\N`, missing values of
every type, time zones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from fulfillment.frames import copy_frame, read_frame


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
