"""Row counts in materialisation metadata: exact on small tables, the planner's estimate on
large ones, and the metadata says which."""

from __future__ import annotations

import psycopg
import pytest

import orchestration.row_counts as row_counts
from orchestration.row_counts import row_count, row_count_metadata

FILL = "insert into marts.rows_probe select g, repeat('x', 40) from generate_series(1, 20000) g"


@pytest.fixture
def orders(fresh_db):
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        conn.execute("create table marts.rows_probe (id integer, note text)")
        conn.execute(FILL)
        yield conn


def test_a_small_table_is_counted(orders) -> None:
    orders.execute("analyze marts.rows_probe")
    assert row_count(orders, "marts.rows_probe") == (20000, True)
    meta = row_count_metadata(orders, '"marts"."rows_probe"')
    assert meta["dagster/row_count"].value == 20000
    assert "row_count_estimated" not in meta


def test_a_large_table_is_estimated_and_said_so(orders, monkeypatch) -> None:
    monkeypatch.setattr(row_counts, "ESTIMATE_FROM", 10_000)
    # never analysed: no estimate to give, so it is counted
    assert row_count(orders, "marts.rows_probe") == (20000, True)
    orders.execute("analyze marts.rows_probe")
    # rows added since the ANALYZE: the estimate follows the table's pages, as the planner's
    orders.execute(FILL)
    rows, exact = row_count(orders, "marts.rows_probe")
    assert not exact and abs(rows - 40000) <= 400
    meta = row_count_metadata(orders, "marts.rows_probe", "rows_in_table")
    assert meta["rows_in_table"].value == rows
    assert meta["row_count_estimated"].value is True
