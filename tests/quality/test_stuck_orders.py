"""Stuck orders: a wave stuck over 24 h in one status (share above 5 %) alerts once per
status; every order past 48 h is flagged red in ops.stuck_orders with the reason its data
points to, and leaves the table when it moves on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from quality import stuck_orders
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PARAMS = {"stuck_hours": 24, "share_threshold": 0.05, "red_hours": 48}


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "marts.order_holographic")
        yield c


def order(no: str, status: str, hours: float, **extra: object) -> dict:
    return {
        "channel": "taobao",
        "platform_order_no": no,
        "unified_status": status,
        "status_entered_at": NOW - timedelta(hours=hours),
        "province": "广东省",
        "is_address_parsed": True,
        "is_cross_border": False,
        "warehouse_id": "WH-GZ",
        **extra,
    }


def red_rows(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "select platform_order_no, status, reason_code, hours_stuck, flagged_at "
        "from ops.stuck_orders"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_wave_stuck_in_picking_alerts_and_flags_the_red_orders(
    conn: psycopg.Connection,
) -> None:
    fresh = [order(f"F{i}", "picking", 2) for i in range(40)]
    wave = [order(f"S{i}", "picking", 30) for i in range(3)] + [
        order("R1", "picking", 50),
        order("R2", "picking", 60, province=None),
    ]
    insert(conn, "marts.order_holographic", fresh + wave + [order("T1", "in_transit", 90)])
    conn.execute(
        "insert into ops.inventory_locks (channel, platform_order_no, sku, warehouse_id, qty, "
        "state) values ('taobao', 'R1', 'SKU1', 'WH-GZ', 2, 'oversold')"
    )
    [alert] = stuck_orders.detect(conn, PARAMS, NOW)
    assert alert.dedup_key == "status=picking"
    assert alert.facts["stuck_orders"] == 5 and alert.facts["orders_in_status"] == 45
    assert alert.facts["red_orders"] == 2
    assert alert.facts["reason_codes"] == {
        "warehouse_backlog": 3,
        "out_of_stock": 1,
        "address_unclear": 1,
    }
    red = red_rows(conn)
    assert set(red) == {"R1", "R2"}  # in transit is not watched by default
    assert red["R1"][:3] == ("picking", "out_of_stock", 50)
    assert red["R2"][1] == "address_unclear"

    # R1 ships: it leaves the table; R2 keeps its first flag time
    conn.execute("update marts.order_holographic set unified_status = 'in_transit' "
                 "where platform_order_no = 'R1'")  # fmt: skip
    stuck_orders.detect(conn, PARAMS, NOW + timedelta(hours=1))
    later = red_rows(conn)
    assert set(later) == {"R2"} and later["R2"][3] == red["R2"][3]
    assert later["R2"][2] == 61


def test_healthy_flow_with_one_old_order_does_not_alert(conn: psycopg.Connection) -> None:
    fresh = [order(f"F{i}", s, 3) for i, s in enumerate(["allocated", "picking"] * 30)]
    insert(conn, "marts.order_holographic", [*fresh, order("OLD", "allocated", 50)])
    assert stuck_orders.detect(conn, PARAMS, NOW) == []
    assert set(red_rows(conn)) == {"OLD"}  # still flagged red on its own


def test_each_reason_code_comes_from_the_orders_data(conn: psycopg.Connection) -> None:
    cases = {
        "out_of_stock": order("A", "pending_allocation", 50),
        "address_unclear": order("B", "pending_allocation", 50, is_address_parsed=False),
        "customs_rejected": order("C", "paid_pending_review", 50, is_cross_border=True),
        "risk_review": order("D", "paid_pending_review", 50, risk_state="held"),
        "manual_review": order("E", "pending_allocation", 50, routing_decision="manual_review"),
        "pickup_failed": order("F", "pickup_failed", 50, had_pickup_failure=True),
        "status_conflict": order("G", "allocated", 50, status_violations=2),
        "payment_review": order("H", "paid_pending_review", 50),
        "awaiting_allocation": order("I", "pending_allocation", 50),
        "warehouse_backlog": order("J", "allocated", 50),
        "awaiting_pickup": order("K", "awaiting_pickup", 50),
        "carrier_stalled": order("L", "in_transit", 50),
    }
    assert set(cases) == set(stuck_orders.REASON_CODES)
    insert(conn, "marts.order_holographic", cases.values())
    conn.execute(
        "insert into ops.inventory_locks (channel, platform_order_no, sku, warehouse_id, qty, "
        "state) values ('taobao', 'A', 'SKU1', '-', 1, 'oversold')"
    )
    statuses = [*stuck_orders.StuckOrdersParams().statuses, "in_transit"]
    stuck_orders.detect(conn, {**PARAMS, "statuses": statuses}, NOW)
    red = red_rows(conn)
    assert {code: red[o["platform_order_no"]][1] for code, o in cases.items()} == {
        code: code for code in cases
    }
