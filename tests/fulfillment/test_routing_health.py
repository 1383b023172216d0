"""Routing's warehouse health read from the warehouse (fulfillment/routing_store.py `_HEALTH`):
each warehouse's run of failed pickups among its newest shipments, newest first by shipping
time (unshipped last) then waybill, found by walking down the newest shipments until one did
not fail, against the same run counted over every shipment in Python."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg

from fulfillment.frames import read_frame
from fulfillment.routing_store import _HEALTH, RUN_COUNTED

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
FAILED, MOVING = "pickup_failed", "in_transit"


def _warehouse(conn: psycopg.Connection, shipments: list[tuple]) -> None:
    conn.execute("create schema if not exists intermediate")
    conn.execute("create schema if not exists staging")
    conn.execute(
        "create table if not exists intermediate.int_carrier_shipments (tracking_no text "
        "primary key, warehouse_id text, shipped_at timestamptz, last_track_status text)"
    )
    conn.execute(
        "create index if not exists ics_latest_by_warehouse on "
        "intermediate.int_carrier_shipments (warehouse_id, shipped_at desc nulls last, "
        "tracking_no desc) include (last_track_status) where warehouse_id is not null"
    )
    conn.execute(
        "create table if not exists staging.stg_merchant_systems__wms_stock "
        "(warehouse_id text, sku text, last_sync_at timestamptz)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_carrier_shipments values (%s, %s, %s, %s)", shipments
        )
        cur.executemany(
            "insert into staging.stg_merchant_systems__wms_stock values (%s, 'A', %s)",
            [(w, T0) for w in ("SZ", "HF", "GZ", "CD", "WH", "XA")],
        )


def _counted_in_python(shipments: list[tuple], warehouse: str) -> int:
    mine = [s for s in shipments if s[1] == warehouse]
    # newest first: shipping time descending with the unshipped last, then waybill descending
    mine.sort(key=lambda s: s[0], reverse=True)
    mine.sort(key=lambda s: (s[2] is None, -(s[2] or T0).timestamp()))
    run = 0
    for shipment in mine:
        if shipment[3] != FAILED:
            break
        run += 1
    return run


def test_each_warehouses_run_of_failed_pickups_is_counted_from_its_newest(fresh_db) -> None:
    rng = random.Random(7)
    shipments = []
    # SZ: three failed, then one that moved, then failures again (not counted)
    for i, status in enumerate([FAILED, FAILED, FAILED, MOVING, FAILED, FAILED]):
        shipments.append((f"SZ{i:03}", "SZ", T0 - timedelta(hours=i), status))
    # HF: the newest moved
    shipments += [(f"HF{i:03}", "HF", T0 - timedelta(hours=i), s) for i, s in
                  enumerate([MOVING, FAILED, FAILED])]  # fmt: skip
    # GZ: every shipment failed
    shipments += [(f"GZ{i:03}", "GZ", T0 - timedelta(hours=i), FAILED) for i in range(4)]
    # CD: an unshipped failure sorts after every shipped one; equal times go by waybill
    shipments += [
        ("CD001", "CD", None, FAILED),
        ("CD002", "CD", T0, FAILED),
        ("CD003", "CD", T0, MOVING),
        ("CD004", "CD", T0 - timedelta(hours=1), FAILED),
    ]
    # WH: none at all; XA: random statuses and tied times, checked against Python's count
    shipments += [
        (f"XA{i:03}", "XA", T0 - timedelta(hours=rng.randrange(5)),
         FAILED if rng.random() < 0.8 else MOVING)
        for i in range(60)
    ]  # fmt: skip
    shipments.append(("NOWH1", None, T0, FAILED))  # no warehouse: nobody's run
    with psycopg.connect(fresh_db.url()) as conn:
        _warehouse(conn, shipments)
        health = read_frame(conn, _HEALTH).set_index("warehouse_id")
    runs = health["consecutive_shipping_failures"].astype(int).to_dict()
    assert runs == {"SZ": 3, "HF": 0, "GZ": 4, "CD": 0, "WH": 0, "XA": runs["XA"]}
    assert runs["XA"] == _counted_in_python(shipments, "XA")
    assert health.loc["SZ", "last_stock_sync_at"] == T0


def test_a_run_longer_than_the_walk_is_counted_up_to_it(fresh_db) -> None:
    shipments = [
        (f"GZ{i:05}", "GZ", T0 - timedelta(minutes=i), FAILED) for i in range(RUN_COUNTED + 5)
    ]
    with psycopg.connect(fresh_db.url()) as conn:
        _warehouse(conn, shipments)
        health = read_frame(conn, _HEALTH).set_index("warehouse_id")
    assert int(health.loc["GZ", "consecutive_shipping_failures"]) == RUN_COUNTED
