"""The embedded server's write path: a table filled in the transaction that creates it (a dbt
table build) is not written twice through the WAL."""

from __future__ import annotations

import os

import psycopg
import pytest

from kernel.database import PgConn


@pytest.mark.skipif(
    bool(os.environ.get("ORDERPULSE_TEST_PG_URL")),
    reason="an external server keeps its own WAL settings",
)
def test_a_table_built_in_one_transaction_skips_the_wal(fresh_db: PgConn) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:

        def wal_bytes(sql: str) -> int:
            before = conn.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
            with conn.transaction():
                conn.execute(sql)
            return conn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [before]
            ).fetchone()[0]

        rows = "select g as id, md5(g::text) as payload from generate_series(1, 200000) g"
        conn.execute("create table filled_later (id int, payload text)")
        logged = wal_bytes(f"insert into filled_later {rows}")
        built = wal_bytes(f"create table built_at_once as {rows}")
        size = conn.execute("select pg_relation_size('built_at_once')").fetchone()[0]
    assert logged > size / 2  # an insert into an existing table goes through the WAL
    assert built < size / 20  # the new table is synced at commit instead
