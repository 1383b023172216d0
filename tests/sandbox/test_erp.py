"""The sandbox ERP / H5 mall database on the session PostgreSQL server."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from sandbox.erp import publish_erp
from sandbox.model import Order


def _order(no: str, **over) -> Order:
    data = {
        "channel": "h5mall",
        "platform_order_no": no,
        "shop_id": "H5-MAIN",
        "created_at": "2026-11-20T10:00:00+08:00",
        "buyer_id": "B1",
        "receiver": {
            "name": "王五",
            "phone": "13700003333",
            "province": "北京市",
            "city": "北京市",
            "district": "朝阳区",
            "address": "建国路3号",
        },
        "items": [
            {"sku": "SKU1", "qty": 2, "price": "19.90", "title": "毛巾"},
            {"sku": "SKU2", "qty": 1, "price": "100"},
        ],
        "coupons": [{"code": "P1", "issuer": "platform", "amount": "10"}],
        "freight": "8",
        "events": [{"at": "2026-11-20T10:05:00+08:00", "type": "pay"}],
    }
    data.update(over)
    return Order.model_validate(data)


@pytest.fixture()
def erp_name(pg):
    name = "erp_" + uuid.uuid4().hex[:8]
    yield name
    with psycopg.connect(pg.url(dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.execute(f'drop role if exists "{name}_reader"')


def _reader(info: dict) -> psycopg.Connection:
    return psycopg.connect(info["url"].replace("postgresql+psycopg://", "postgresql://"))


def test_reader_sees_only_the_view(pg, erp_name) -> None:
    shipped = _order("H2", events=[
        {"at": "2026-11-20T10:05:00+08:00", "type": "pay"},
        {"at": "2026-11-21T08:00:00+08:00", "type": "ship"},
    ])  # fmt: skip
    world = [_order("H1"), shipped, _order("T1", channel="taobao")]
    info = publish_erp(world, pg.url(dbname="postgres"), database=erp_name)
    assert (info["view"], info["updated_at_column"], info["orders"]) == (
        "h5_orders_v",
        "updated_at",
        2,
    )
    assert pg.password not in info["url"]

    with _reader(info) as conn:
        rows = conn.execute(
            "select order_no, status_code, status_name, goods_amount::text, pay_amount::text, "
            "items, updated_at from h5_orders_v order by order_no"
        ).fetchall()
        assert [r[:5] for r in rows] == [
            ("H1", 20, "待发货", "139.80", "137.80"),
            ("H2", 30, "已发货", "139.80", "137.80"),
        ]
        assert rows[0][5][0] == {
            "line_no": 1, "sku": "SKU1", "title": "毛巾", "qty": 2, "unit_price": "19.90",
        }  # fmt: skip
        assert rows[1][6] == shipped.events[-1].at
    for forbidden in (
        "select * from mall.orders",
        "select * from mall.order_items",
        "create table public.x (a int)",
        "delete from h5_orders_v",
    ):
        with _reader(info) as conn:
            assert conn.execute("show default_transaction_read_only").fetchone()[0] == "on"
            # a session may lift the read-only default: the privileges must still refuse
            conn.execute("set default_transaction_read_only = off")
            conn.commit()
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(forbidden)


def test_publishing_again_is_idempotent_and_follows_the_world(pg, erp_name) -> None:
    admin = pg.url(dbname="postgres")
    first = publish_erp([_order("H1"), _order("H2")], admin, database=erp_name)
    assert publish_erp([_order("H1"), _order("H2")], admin, database=erp_name) == first
    with _reader(first) as conn:
        assert conn.execute("select count(*) from h5_orders_v").fetchone()[0] == 2

    later = _order("H1", events=[
        {"at": "2026-11-20T10:05:00+08:00", "type": "pay"},
        {"at": "2026-11-22T09:00:00+08:00", "type": "cancel"},
    ])  # fmt: skip
    again = publish_erp([later], admin, database=erp_name)
    assert again["url"] == first["url"]
    with _reader(again) as conn:
        rows = conn.execute("select order_no, status_code, updated_at from h5_orders_v").fetchall()
    assert rows == [("H1", 50, later.events[-1].at)]
