"""Inventory: an oversold SKU (ops.inventory_locks) alerts once per SKU; SKUs newly on
ops.pause_sale alert once as a list, and the cursor keeps old ones out; locked stock and
an empty pause-sale list stay quiet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from quality import oversold_skus, pause_sale_watch
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c)
        yield c


def lock(no: str, sku: str, state: str, qty: int = 1, channel: str = "jd") -> dict:
    return {"channel": channel, "platform_order_no": no, "sku": sku, "warehouse_id": "WH-SH",
            "qty": qty, "state": state, "paid_at": NOW - timedelta(hours=3)}  # fmt: skip


def test_an_oversold_sku_alerts_once_with_its_orders(conn: psycopg.Connection) -> None:
    insert(conn, "ops.inventory_locks", [
        lock("1", "SKU1", "oversold", 2), lock("2", "SKU1", "oversold", 1, "pdd"),
        lock("3", "SKU1", "locked", 5), lock("4", "SKU2", "locked", 3),
        lock("5", "SKU3", "released", 1),
    ])  # fmt: skip
    [alert] = oversold_skus.detect(conn, {}, NOW)
    assert alert.dedup_key == "sku=SKU1"
    assert alert.facts["orders"] == 2 and alert.facts["units_short"] == 3
    assert alert.facts["channels"] == ["jd", "pdd"]


def test_locked_stock_is_not_oversold(conn: psycopg.Connection) -> None:
    insert(
        conn, "ops.inventory_locks", [lock("1", "SKU1", "locked"), lock("2", "SKU2", "released")]
    )
    assert oversold_skus.detect(conn, {}, NOW) == []


def test_new_pause_sale_skus_alert_once_as_a_list(conn: psycopg.Connection) -> None:
    assert pause_sale_watch.detect(conn, {}, NOW) == []
    insert(conn, "ops.pause_sale", [
        {"sku": "SKU1", "reason": "below safety stock", "since": NOW - timedelta(hours=5),
         "sellable": 2, "threshold": 5},
        {"sku": "SKU2", "reason": "below safety stock", "since": NOW - timedelta(minutes=3),
         "sellable": 0, "threshold": 5},
    ])  # fmt: skip
    [alert] = pause_sale_watch.detect(conn, {}, NOW, since=NOW - timedelta(minutes=10))
    assert alert.facts == {"skus": ["SKU2"], "paused_skus": 1}
    assert alert.table[0]["sellable"] == 0 and alert.dedup_key.startswith("skus=")
    [first_look] = pause_sale_watch.detect(conn, {}, NOW)  # no cursor yet: every paused SKU
    assert first_look.facts["skus"] == ["SKU1", "SKU2"]
    assert pause_sale_watch.detect(conn, {}, NOW, since=NOW - timedelta(minutes=1)) == []


def reconciliation(sku: str, platform: str, platform_qty: int, wms_qty: int) -> dict:
    return {"sku": sku, "warehouse_id": "ALL", "platform": platform, "wms_qty": wms_qty,
            "platform_qty": platform_qty, "diff": platform_qty - wms_qty, "tolerance": 3,
            "checked_at": NOW, "first_seen_at": NOW - timedelta(hours=1)}  # fmt: skip


def test_a_platform_stock_off_the_wms_alerts_once_per_sku(conn: psycopg.Connection) -> None:
    from quality import stock_mismatch

    insert(conn, "ops.stock_reconciliation", [
        reconciliation("SKU1", "taobao", 20, 12), reconciliation("SKU1", "jd", 5, 12),
        reconciliation("SKU2", "pdd", 16, 12),  # 4 off: within a looser tolerance below
    ])  # fmt: skip
    alerts = {a.dedup_key: a for a in stock_mismatch.detect(conn, {}, NOW)}
    assert set(alerts) == {"sku=SKU1", "sku=SKU2"}
    sku1 = alerts["sku=SKU1"]
    assert sku1.facts["platforms"] == ["jd", "taobao"]
    assert sku1.facts["worst_diff"] == 8 and sku1.facts["wms_available"] == 12
    # the tolerance is the rule's: 4 units off is quiet under a tolerance of 4
    loose = stock_mismatch.detect(conn, {"tolerance": 4}, NOW)
    assert {a.dedup_key for a in loose} == {"sku=SKU1"}
    assert stock_mismatch.detect(conn, {"tolerance": 10}, NOW) == []
