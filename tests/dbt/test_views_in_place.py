"""Rebuilding a view keeps the views built on it: live mode rebuilds one channel's staging view
while the decisions read the intermediate views above it (dbt's default view swap drops them
with CASCADE until something rebuilds them)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from kernel.database import PgConn
from tests.dbt.conftest import run_dbt

PARENT = "stg_taobao__order_items"
CHILD = "int_order_items_unioned"


def _view_oids(conn: PgConn) -> dict[str, int]:
    with psycopg.connect(conn.url()) as db:
        rows = db.execute(
            "select c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where c.relkind = 'v' and n.nspname in ('staging', 'intermediate', 'marts')"
        ).fetchall()
    return dict(rows)


def _count(conn: PgConn, relation: str) -> int:
    with psycopg.connect(conn.url()) as db:
        return db.execute(f"select count(*) from {relation}").fetchone()[0]


def test_rebuilding_a_staging_view_alone_keeps_every_view_above_it(
    built_warehouse: PgConn, tmp_path: Path
):
    before = _view_oids(built_warehouse)
    lines = _count(built_warehouse, f"intermediate.{CHILD}")
    assert PARENT in before and CHILD in before and lines > 0

    run_dbt(built_warehouse, tmp_path, "run", "--select", PARENT)

    after = _view_oids(built_warehouse)
    assert set(after) == set(before), f"views dropped: {sorted(set(before) - set(after))}"
    # replaced in place: the very same relations, not dropped and created again
    assert after == before
    assert _count(built_warehouse, f"intermediate.{CHILD}") == lines


def test_a_view_whose_columns_changed_is_created_again(built_warehouse: PgConn, tmp_path: Path):
    """`create or replace view` refuses a view whose columns differ (a code change): the view
    is dropped and created as dbt's default would, and its dependants are rebuilt by dbt."""
    with psycopg.connect(built_warehouse.url()) as db:
        db.execute(f"drop view staging.{PARENT} cascade")
        db.execute(f"create view staging.{PARENT} as select 1 as an_old_column")
    try:
        run_dbt(built_warehouse, tmp_path, "run", "--select", PARENT)
        with psycopg.connect(built_warehouse.url()) as db:
            columns = {
                r[0]
                for r in db.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'staging' and table_name = %s",
                    (PARENT,),
                )
            }
        assert "an_old_column" not in columns and "platform_order_no" in columns
    finally:
        # the views the manual drop cascaded away, for the module's other tests
        run_dbt(built_warehouse, tmp_path, "run", "--select", "config.materialized:view")
    assert _count(built_warehouse, f"intermediate.{CHILD}") > 0
