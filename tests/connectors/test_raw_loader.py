"""The shared raw loader against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from connectors.raw_loader import (
    STAGE_TEMP_BUFFERS,
    CursorUpdate,
    RawOrder,
    load_orders,
    read_cursor,
)
from connectors.raw_schema import ensure_raw_tables


def _snapshot(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select platform_order_no, content_hash, loaded_at from raw.jd_orders order by 1"
    ).fetchall()


def test_rerun_is_a_noop_and_older_updates_lose(fresh_db) -> None:
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    orders = [RawOrder(str(i), t0, {"orderId": str(i), "amount": i}) for i in range(500)]
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["jd"])
        first = load_orders(conn, "jd", orders, run_id="r1", cursor=CursorUpdate("jd", t0))
        assert (first.inserted, first.updated) == (500, 0)
        before = _snapshot(conn)

        again = load_orders(conn, "jd", orders, run_id="r2")
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 500)
        assert _snapshot(conn) == before

        late_old = RawOrder("1", t0 - timedelta(hours=1), {"orderId": "1", "amount": -1})
        newer = RawOrder("2", t0 + timedelta(minutes=1), {"orderId": "2", "amount": 99})
        dup_older = RawOrder("2", t0, {"orderId": "2", "amount": 50})
        stats = load_orders(conn, "jd", [late_old, newer, dup_older], run_id="r3")
        assert (stats.inserted, stats.updated, stats.unchanged) == (0, 1, 1)
        rows = dict(
            conn.execute(
                "select platform_order_no, payload->>'amount' from raw.jd_orders "
                "where platform_order_no in ('1', '2')"
            ).fetchall()
        )
        assert rows == {"1": "1", "2": "99"}
        assert conn.execute("select count(*) from raw.jd_orders").fetchone()[0] == 500


def test_cursor_moves_with_its_rows_and_never_back(fresh_db) -> None:
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["pdd"])
        load_orders(conn, "pdd", [RawOrder("a", t0, {})], cursor=CursorUpdate("pdd", t0))
        assert read_cursor(conn, "pdd") == t0
        load_orders(conn, "pdd", [], cursor=CursorUpdate("pdd", t0 - timedelta(days=1)))
        assert read_cursor(conn, "pdd") == t0


def _order_payload(i: int) -> dict:
    """~3 KB of JSON, like a marketplace order with a few lines: above PostgreSQL's 2 KB
    compression threshold."""
    lines = [{"sku": f"SKU-{i}-{n}", "title": f"商品 {n} " * 30, "qty": n} for n in range(8)]
    return {"orderId": str(i), "buyer": f"buyer-{i}", "lines": lines}


def _compressed(conn: psycopg.Connection, table: str) -> tuple[int, int]:
    return conn.execute(
        f"select count(*) filter (where pg_column_compression(payload) is not null), count(*) "
        f"from {table}"
    ).fetchone()


def test_payloads_are_stored_uncompressed(fresh_db) -> None:
    # staging reads ~40 fields of each payload, and each read of a compressed value
    # decompresses all of it again
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    orders = [RawOrder(str(i), t0, _order_payload(i)) for i in range(50)]
    assert len(str(orders[0].payload).encode()) > 2500
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["youzan"])
        load_orders(conn, "youzan", orders, run_id="r1")
        assert _compressed(conn, "raw.youzan_orders") == (0, 50)

        # a table made before the storage option: ensure_raw_tables sets it, new rows are plain
        conn.execute("alter table raw.youzan_orders reset (toast_tuple_target)")
        conn.execute("truncate raw.youzan_orders")
        conn.commit()
        load_orders(conn, "youzan", orders, run_id="r2")
        assert _compressed(conn, "raw.youzan_orders") == (50, 50)  # PostgreSQL's default
        ensure_raw_tables(conn, ["youzan"])
        later = [RawOrder(str(i), t0 + timedelta(minutes=1), _order_payload(i)) for i in range(50)]
        load_orders(conn, "youzan", later, run_id="r3")
        assert _compressed(conn, "raw.youzan_orders") == (0, 50)


def _temp_writes(conn: psycopg.Connection) -> int:
    """Pages this session wrote out of its temp-table buffers (PostgreSQL 18's per-backend
    I/O statistics, flushed first)."""
    conn.execute("select pg_stat_force_next_flush()")
    conn.commit()
    conn.execute("select 1")  # the flush happens as the session goes idle after a transaction
    conn.commit()
    return conn.execute(
        "select coalesce(sum(writes), 0) from pg_stat_get_backend_io(pg_backend_pid())"
        " where object = 'temp relation'"
    ).fetchone()[0]


def test_a_stage_stays_in_memory_and_a_session_that_cannot_grow_still_loads(fresh_db) -> None:
    """A load of 4,000 ~3 KB orders (12 MB staged, more than PostgreSQL's default 8 MB of
    temp buffers) writes none of its stage out: the loader gives the session room first.
    A session that used a temp table before its first load keeps the size it has (PostgreSQL
    refuses the change): it loads all the same, its stage going through the disk."""
    with psycopg.connect(fresh_db.url()) as conn:
        if conn.info.server_version < 180000:
            pytest.skip("per-backend I/O statistics need PostgreSQL 18")
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    orders = [RawOrder(str(i), t0, _order_payload(i)) for i in range(4000)]
    written = {}
    for used_temp_before in (False, True):
        with psycopg.connect(fresh_db.url()) as conn:
            ensure_raw_tables(conn, ["youzan"])
            conn.execute("truncate raw.youzan_orders")
            if used_temp_before:
                conn.execute("create temp table earlier (x int)")
                conn.execute("insert into earlier values (1)")
            conn.commit()
            before = _temp_writes(conn)
            stats = load_orders(conn, "youzan", orders, run_id="r1")
            assert stats.inserted == 4000
            written[used_temp_before] = _temp_writes(conn) - before
            size = conn.execute("show temp_buffers").fetchone()[0]
            assert size == ("8MB" if used_temp_before else STAGE_TEMP_BUFFERS)
    assert written[False] == 0
    assert written[True] > 0  # what the room saves
