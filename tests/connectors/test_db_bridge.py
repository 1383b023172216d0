"""The DB bridge against a real second PostgreSQL database (read-only role) and SQLite."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import ValidationError

from connectors.channels_config import DbBridgeSettings, load_channels
from connectors.credentials import CredentialsError
from connectors.db_bridge import DbBridgeError, pull, resolve_url
from connectors.raw_loader import read_cursor
from sandbox.erp import publish_erp
from sandbox.model import Order


def _order(no: str, minute: int, events: list | None = None) -> Order:
    return Order.model_validate(
        {
            "channel": "h5mall",
            "platform_order_no": no,
            "shop_id": "H5-MAIN",
            "created_at": f"2026-11-20T10:{minute:02d}:00+08:00",
            "buyer_id": "B" + no,
            "receiver": {
                "name": "孙七",
                "phone": "13500005555",
                "province": "四川省",
                "city": "成都市",
                "district": "武侯区",
                "address": "人民南路4号",
            },
            "items": [{"sku": "SKU1", "qty": 2, "price": "12.5"}],
            "coupons": [{"code": "S", "issuer": "shop", "amount": "3"}],
            "freight": "5",
            "events": events
            if events is not None
            else [{"at": f"2026-11-20T10:{minute:02d}:30+08:00", "type": "pay"}],
        }
    )


@pytest.fixture()
def erp(pg):
    name = "erp_" + uuid.uuid4().hex[:8]
    yield name
    with psycopg.connect(pg.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'drop role if exists "{name}_reader"')


def test_pulls_the_erp_view_incrementally_as_the_read_only_role(pg, fresh_db, erp) -> None:
    world = [_order(f"H{i:02d}", i) for i in range(25)]
    info = publish_erp(world, pg.url(dbname="postgres"), database=erp)
    cfg = load_channels().channels["h5mall"].db_bridge.model_copy(update={"chunk_size": 10})
    with psycopg.connect(fresh_db.url()) as conn:
        first = pull(conn, "h5mall", info["url"], cfg, run_id="r1")
        assert (first.rows, first.chunks, first.stats.inserted, first.since) == (25, 3, 25, None)
        assert read_cursor(conn, "h5mall") == world[-1].paid_at
        payload = conn.execute(
            "select payload from raw.h5mall_orders where platform_order_no = 'H03'"
        ).fetchone()[0]
        # the view's own columns plus the normalised keys of config/channels.yaml
        assert (payload["pay_amount"], payload["paid_amount"]) == ("27.00", "27.00")
        assert (payload["status_name"], payload["status"]) == ("待发货", "待发货")
        assert payload["items"] == [
            {"line_no": 1, "sku": "SKU1", "title": None, "qty": 2, "unit_price": "12.50",
             "price": "12.50"}
        ]  # fmt: skip
        assert payload["created_at"] == "2026-11-20T10:03:00+08:00"  # whatever the session zone

        # H05 ships, H30 is new; the rest is unchanged
        shipped = _order("H05", 5, [
            {"at": "2026-11-20T10:05:30+08:00", "type": "pay"},
            {"at": "2026-11-21T09:00:00+08:00", "type": "ship"},
        ])  # fmt: skip
        world = [o for o in world if o.platform_order_no != "H05"] + [shipped, _order("H30", 30)]
        publish_erp(world, pg.url(dbname="postgres"), database=erp)
        second = pull(conn, "h5mall", info["url"], cfg, lag=timedelta(minutes=5), run_id="r2")
        assert second.since == datetime(2026, 11, 20, 2, 19, 30, tzinfo=UTC)
        assert (second.stats.inserted, second.stats.updated) == (1, 1)
        assert read_cursor(conn, "h5mall") == shipped.events[-1].at
        status = conn.execute(
            "select payload ->> 'status', run_id from raw.h5mall_orders "
            "where platform_order_no = 'H05'"
        ).fetchone()
        assert status == ("已发货", "r2")
        assert conn.execute("select count(*) from raw.h5mall_orders").fetchone()[0] == 26


def _sqlite(path) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        create table orders (id integer primary key, order_no text, total numeric,
                             lines text, updated_at text);
        create view v_orders as select order_no, total, lines, updated_at from orders;
        """
    )
    rows = [
        (f"S{i}", "10.50", '[{"sku": "K1", "qty": 1}]', "2026-11-20 10:00:00") for i in range(5)
    ]
    rows += [
        ("S5", "99", "not json", "2026-11-20 11:00:00"),
        (None, "1", "[]", "2026-11-20 11:00:00"),
    ]
    rows += [("S6", "7", "[]", None)]
    db.executemany("insert into orders (order_no, total, lines, updated_at) values (?,?,?,?)", rows)
    db.commit()
    db.close()


def test_sqlite_view_in_chunks_with_ties_across_chunk_boundaries(fresh_db, tmp_path) -> None:
    path = tmp_path / "legacy.db"
    _sqlite(path)
    cfg = DbBridgeSettings(
        view="v_orders", updated_at_column="updated_at", key_column="order_no", chunk_size=2,
        json_columns=["lines"], columns={"total": "paid_amount"},
    )  # fmt: skip
    url = f"sqlite:///{path}"
    with psycopg.connect(fresh_db.url()) as conn:
        report = pull(conn, "legacy", url, cfg)
        # five rows share one timestamp and span three chunks: none is skipped or repeated
        assert report.stats.inserted == 6 and report.rejected == 2
        rows = dict(conn.execute("select platform_order_no, payload from raw.legacy_orders"))
        assert sorted(rows) == ["S0", "S1", "S2", "S3", "S4", "S5"]
        assert rows["S0"]["lines"] == [{"sku": "K1", "qty": 1}]
        assert rows["S5"]["lines"] == "not json"  # kept as text
        assert rows["S0"]["paid_amount"] == 10.5
        modified = conn.execute(
            "select source_modified_at from raw.legacy_orders where platform_order_no = 'S5'"
        ).fetchone()[0]
        assert modified == datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # naive = Asia/Shanghai
        rejected = conn.execute(
            "select file, reason from raw.rejected_rows where source = 'legacy' order by reason"
        ).fetchall()
        assert rejected == [("v_orders", "no order_no"), ("v_orders", "no updated_at")]

        db = sqlite3.connect(path)
        db.execute("insert into orders (order_no, total, lines, updated_at) "
                   "values ('S7', 1, '[]', '2026-11-20 12:00:00')")  # fmt: skip
        db.execute("update orders set total = 11, updated_at = '2026-11-20 12:00:00' "
                   "where order_no = 'S1'")  # fmt: skip
        db.commit()
        db.close()
        again = pull(conn, "legacy", url, cfg, lag=timedelta(0))
        assert again.since == datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
        assert (again.stats.inserted, again.stats.updated, again.stats.unchanged) == (1, 1, 1)
        # still invalid, still reported once each
        assert conn.execute("select count(*) from raw.rejected_rows").fetchone()[0] == 2


def test_a_query_source_and_identifier_validation(fresh_db, tmp_path) -> None:
    path = tmp_path / "legacy.db"
    _sqlite(path)
    cfg = DbBridgeSettings(
        query="select order_no as no, updated_at as changed from orders where total > 10",
        updated_at_column="changed", key_column="no",
    )  # fmt: skip
    with psycopg.connect(fresh_db.url()) as conn:
        report = pull(conn, "legacy", f"sqlite:///{path}", cfg)
        assert report.stats.inserted == 6
    for bad in ({"view": "orders; drop table orders"}, {"view": "a.b.c"}):
        with pytest.raises(ValidationError, match="not a plain SQL identifier"):
            DbBridgeSettings(key_column="id", **bad)
    with pytest.raises(ValidationError, match="not a plain SQL identifier"):
        DbBridgeSettings(view="v", key_column="id) or (1=1")
    with pytest.raises(ValidationError, match="exactly one of view or query"):
        DbBridgeSettings(key_column="id")


def test_unreachable_source_and_missing_url_errors_hide_the_password(fresh_db, tmp_path) -> None:
    cfg = DbBridgeSettings(view="v", key_column="id")
    url = "postgresql+psycopg://reader:TopSecret99@127.0.0.1:1/erp"
    with psycopg.connect(fresh_db.url()) as conn, pytest.raises(DbBridgeError) as err:
        pull(conn, "h5mall", url, cfg)
    assert "TopSecret99" not in str(err.value) and "reader:***@" in str(err.value)
    with pytest.raises(CredentialsError, match="ORDERPULSE_H5MALL_DB_URL"):
        resolve_url("h5mall", tmp_path / "none.json", environ={})
    assert resolve_url("h5mall", environ={"ORDERPULSE_H5MALL_DB_URL": url}) == url
