"""The `ops` schema's DDL: created and brought up to date in place, and, once current, ensured
without a lock, so decision assets that ensure it in long transactions never wait on each
other."""

from __future__ import annotations

import psycopg
import pytest

from fulfillment.ops_schema import OPS_TABLES, ensure_ops_tables


def test_an_older_warehouse_gains_the_missing_column_and_key(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_ops_tables(conn)
        conn.execute("drop index ops.routing_decisions_key")
        conn.execute("alter table ops.routing_decisions drop column input_hash")
        conn.execute("drop table ops.review_queue")
        ensure_ops_tables(conn)
        columns = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'ops' and table_name = 'routing_decisions'"
            )
        }
        indexes = {
            r[0] for r in conn.execute("select indexname from pg_indexes where schemaname = 'ops'")
        }
        tables = {
            r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'ops'")
        }
    assert "input_hash" in columns
    assert {"routing_decisions_key", "review_queue_key"} <= indexes
    assert tables == set(OPS_TABLES)


def test_a_current_schema_is_ensured_while_another_transaction_ensured_it(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_ops_tables(conn)
    # a decision asset: reads, ensures its tables, computes, all in one transaction
    with psycopg.connect(fresh_db.url()) as holder:
        holder.execute("select 1")
        ensure_ops_tables(holder)
        holder.execute("select 2")
        with psycopg.connect(fresh_db.url()) as other:
            other.execute("set lock_timeout = '2s'")
            ensure_ops_tables(other)  # before: waited for the holder's commit, then timed out
            other.commit()
        holder.commit()


def test_a_missing_table_is_created_under_the_lock(fresh_db) -> None:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_ops_tables(conn)
        conn.execute("drop table ops.alerts")
    with psycopg.connect(fresh_db.url()) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtext('orderpulse.ops_schema'))")
        with psycopg.connect(fresh_db.url()) as other:
            other.execute("set lock_timeout = '1s'")
            # something is missing: the DDL waits for whoever migrates the schema
            with pytest.raises(psycopg.errors.LockNotAvailable):
                ensure_ops_tables(other)
        holder.rollback()
