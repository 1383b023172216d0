"""Merged orders route together: a merge group's orders decided in one run ship from one
warehouse with one carrier; an order arriving after its group-mate was allocated follows the
mate when the mate's warehouse has the stock, and says why when it cannot."""

from __future__ import annotations

import pandas as pd

from fulfillment.merged_routing import fold_groups, follow_allocated_mates, unfold_decisions
from fulfillment.routing import route
from tests.fulfillment.routing_world import NOW, frames, health, make_rules, order, stock

# Suzhou holds A but not B; Hefei holds both: alone, the A order ships from Suzhou (near
# Shanghai) and the B order from Hefei
LEVELS = {"SZ": {"A": 100}, "HF": {"A": 100, "B": 100}, "GZ": {}, "CD": {}}
T1 = order("T1", "上海", {"A": 1}, goods=100, freight=5)
J1 = order("J1", "上海", {"B": 2}, goods=300, freight=6, paid_min=10, channel="jd")
GROUP = pd.DataFrame(
    {"group_id": ["g1", "g1"], "channel": ["taobao", "jd"], "platform_order_no": ["T1", "J1"]}
)


def _route(orders: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    return route(orders, lines, stock(LEVELS), health(), make_rules(), NOW).decisions


def _by_no(decisions: pd.DataFrame) -> dict[str, dict]:
    return {r["platform_order_no"]: r for r in decisions.to_dict("records")}


def test_a_group_decided_in_one_run_ships_from_one_warehouse_with_one_carrier():
    orders, lines = frames(T1, J1)
    alone = _by_no(_route(orders, lines))
    assert alone["T1"]["warehouse_id"] == "SZ" and alone["J1"]["warehouse_id"] == "HF"

    folded = fold_groups(orders, lines, GROUP)
    # the earliest paid leads, with every member's lines, goods value and freight
    assert folded.orders["platform_order_no"].tolist() == ["T1"]
    assert folded.orders.loc[0, ["goods_value", "freight"]].tolist() == [400, 11]
    assert sorted(folded.lines["sku"]) == ["A", "B"]
    assert set(folded.lines["platform_order_no"]) == {"T1"}
    together = _by_no(unfold_decisions(_route(folded.orders, folded.lines), folded.members))
    assert set(together) == {"T1", "J1"}
    assert together["T1"]["warehouse_id"] == together["J1"]["warehouse_id"] == "HF"
    assert together["T1"]["carrier"] == together["J1"]["carrier"]
    assert together["J1"]["inputs"]["merged_with"] == {
        "channel": "taobao",
        "platform_order_no": "T1",
    }


def test_orders_outside_any_group_are_untouched():
    orders, lines = frames(T1, J1)
    folded = fold_groups(orders, lines, GROUP.iloc[:1])  # a group of one does not fold
    assert folded.members.empty
    pd.testing.assert_frame_equal(folded.orders, orders)
    pd.testing.assert_frame_equal(folded.lines, lines)


def _mate(warehouse: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "channel": "taobao", "platform_order_no": "T1", "mate_channel": "jd",
        "mate_order_no": "J0", "group_id": "g1", "warehouse_id": warehouse, "carrier": "EMS",
        "promise_days": 3.0, "promised_delivery_at": pd.Timestamp("2026-11-27 12:00", tz="UTC"),
    }])  # fmt: skip


def test_a_late_order_follows_its_allocated_mate_when_the_stock_is_there():
    orders, lines = frames(T1)
    own = _route(orders, lines)
    assert own.loc[0, "warehouse_id"] == "SZ"
    followed = _by_no(follow_allocated_mates(own, _mate("HF"), lines, stock(LEVELS), NOW))["T1"]
    assert (followed["warehouse_id"], followed["carrier"], followed["rule"]) == (
        "HF", "EMS", "merge_group",
    )  # fmt: skip
    # one parcel: the mate's promise
    assert followed["promise_days"] == 3.0
    assert followed["inputs"]["own_choice"]["warehouse_id"] == "SZ"


def test_a_late_order_keeps_its_own_warehouse_when_the_mates_lacks_stock():
    orders, lines = frames(T1)
    own = _route(orders, lines)
    kept = _by_no(follow_allocated_mates(own, _mate("GZ"), lines, stock(LEVELS), NOW))["T1"]
    assert kept["warehouse_id"] == "SZ" and kept["rule"] != "merge_group"
    assert "lacks stock" in kept["inputs"]["merge_not_followed"]


# -- against the warehouse: decide_routing reads ops.merge_candidates ----------------------

INPUT_TABLES = """
create schema if not exists intermediate;
create schema if not exists staging;
create schema if not exists raw;
create table intermediate.int_orders_awaiting_allocation (
    channel text, platform_order_no text, province text, city text, district text,
    goods_value numeric, freight numeric, paid_at timestamptz, content_hash text);
create table intermediate.int_orders (
    channel text, platform_order_no text, province text, paid_at timestamptz);
create table intermediate.int_order_items (
    channel text, platform_order_no text, sku text, qty integer);
create table staging.stg_merchant_systems__wms_stock (
    warehouse_id text, sku text, on_hand integer, available integer, safety_stock integer,
    last_sync_at timestamptz);
create table intermediate.int_carrier_shipments (
    channel text, platform_order_no text, warehouse_id text, carrier text, tracking_no text,
    shipped_at timestamptz, delivered_at timestamptz, last_track_status text);
create table raw.address_geo (
    channel text, platform_order_no text, address_hash text, latitude float8, longitude float8);
"""


def _db_orders(conn, *orders: tuple[str, str, dict[str, int], int]) -> None:
    """Paid orders to Shanghai: (channel, order no, lines, minutes after 10:00 paid)."""
    for channel, no, lines, minute in orders:
        paid = NOW.replace(hour=2) + pd.Timedelta(minutes=minute)
        conn.execute(
            "insert into intermediate.int_orders_awaiting_allocation values "
            "(%s, %s, '上海市', '上海市', '浦东新区', 200, 8, %s, md5(%s))",
            (channel, no, paid, no),
        )
        conn.execute(
            "insert into intermediate.int_orders values (%s, %s, '上海市', %s)",
            (channel, no, paid),
        )
        conn.execute(
            "insert into raw.address_geo values (%s, %s, 'h', 31.23, 121.47)", (channel, no)
        )
        for sku, qty in lines.items():
            conn.execute(
                "insert into intermediate.int_order_items values (%s, %s, %s, %s)",
                (channel, no, sku, qty),
            )


def _decision(conn, channel: str, no: str) -> tuple:
    return conn.execute(
        "select decision, warehouse_id, carrier, rule, inputs from ops.routing_decisions "
        "where channel = %s and platform_order_no = %s and part = 0",
        (channel, no),
    ).fetchone()


def test_decide_routing_routes_a_group_together_and_a_late_member_follows(fresh_db):
    import psycopg

    from fulfillment.ops_schema import ensure_ops_tables
    from fulfillment.routing_rules import load_routing_rules
    from fulfillment.routing_store import decide_routing

    rules = load_routing_rules()
    east, south = "WH-EAST", "WH-SOUTH"
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(INPUT_TABLES)
        ensure_ops_tables(conn)
        # the east warehouse (near Shanghai) holds A only, the south one A and B
        for warehouse, sku in ((east, "A"), (south, "A"), (south, "B")):
            conn.execute(
                "insert into staging.stg_merchant_systems__wms_stock values "
                "(%s, %s, 500, 500, 10, %s)",
                (warehouse, sku, NOW),
            )
        _db_orders(conn, ("taobao", "T1", {"A": 1}, 0), ("jd", "J1", {"B": 1}, 10))
        conn.execute(
            "insert into ops.merge_candidates (group_id, channel, platform_order_no, reason) "
            "values ('g1', 'taobao', 'T1', 'test'), ('g1', 'jd', 'J1', 'test')"
        )
        report = decide_routing(conn, rules, NOW)
        t1, j1 = _decision(conn, "taobao", "T1"), _decision(conn, "jd", "J1")
        # one parcel: the only warehouse holding both lines, one carrier
        assert report.merged == 1
        assert t1[:3] == j1[:3] and t1[1] == south, (t1, j1)
        assert j1[4]["merged_with"] == {"channel": "taobao", "platform_order_no": "T1"}

        # a third order of the household arrives after both were allocated: it follows them
        # to the south warehouse although the east one is nearer
        _db_orders(conn, ("pdd", "P1", {"A": 1}, 20))
        conn.execute(
            "insert into ops.merge_candidates (group_id, channel, platform_order_no, reason) "
            "values ('g1', 'pdd', 'P1', 'test')"
        )
        decide_routing(conn, rules, NOW)
        p1 = _decision(conn, "pdd", "P1")
        assert (p1[1], p1[2], p1[3]) == (south, t1[2], "merge_group"), p1
        assert p1[4]["own_choice"]["warehouse_id"] == east

        # alone (no group), the same order ships from the east warehouse
        conn.execute("delete from ops.merge_candidates where platform_order_no = 'P1'")
        conn.execute("delete from ops.routing_decisions where platform_order_no = 'P1'")
        decide_routing(conn, rules, NOW)
        assert _decision(conn, "pdd", "P1")[1] == east
