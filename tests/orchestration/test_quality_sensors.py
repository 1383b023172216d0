"""The business sensors (build_sensor_context, real PostgreSQL): one fires on a crafted
breach and records one alert, a second look within the cool-down records none, healthy data
and a fresh warehouse stay quiet, and the cursor advances."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from kernel.database import PgConn
from orchestration.quality.sensors import WATCHES, build_watch_sensor, quality_sensors
from orchestration.resources import WarehouseResource
from tests.quality.crafted_marts import TABLES, create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def sensor(rule: str, at: datetime) -> dg.SensorDefinition:
    return build_watch_sensor(next(w for w in WATCHES if w.rule == rule), clock=lambda: at)


def evaluate(sensor_def: dg.SensorDefinition, db: PgConn, cursor: str | None = None):
    context = dg.build_sensor_context(
        cursor=cursor, resources={"warehouse": WarehouseResource(pg_url=db.url())}
    )
    return sensor_def(context), context.cursor


@pytest.fixture()
def marts(fresh_db: PgConn) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        create(conn, *TABLES)
        yield conn


def silent_pdd(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        insert into intermediate.int_orders (channel, platform_order_no, created_at)
        select c, c || g, %(now)s - g * interval '1 minute'
        from unnest(array['taobao', 'jd', 'pdd']) as c, generate_series(1, 360) as g
        where not (c = 'pdd' and g < 90)
        """,
        {"now": NOW},
    )


def test_order_pulse_sensor_fires_once_then_the_cool_down_holds(
    marts: psycopg.Connection, fresh_db: PgConn
) -> None:
    silent_pdd(marts)
    result, cursor = evaluate(sensor("order_pulse", NOW), fresh_db)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "order_pulse: 1 found, 1 raised (0 within their cool-down)"
    assert json.loads(cursor) == {"evaluated_at": NOW.isoformat()}
    rows = marts.execute("select rule, dedup_key, delivery, created_at from ops.alerts").fetchall()
    assert rows == [("order_pulse", "channel=pdd", "pending", NOW)]

    later = NOW + timedelta(minutes=2)
    result, cursor = evaluate(sensor("order_pulse", later), fresh_db, cursor)
    assert result.skip_message == "order_pulse: 1 found, 0 raised (1 within their cool-down)"
    assert json.loads(cursor) == {"evaluated_at": later.isoformat()}
    assert marts.execute("select count(*) from ops.alerts").fetchone()[0] == 1


def test_stuck_orders_sensor_keeps_its_red_flags(
    marts: psycopg.Connection, fresh_db: PgConn
) -> None:
    insert(marts, "marts.order_holographic", [
        {"channel": "jd", "platform_order_no": f"J{i}", "unified_status": "picking",
         "province": "广东省", "status_entered_at": NOW - timedelta(hours=50 if i < 4 else 1)}
        for i in range(20)
    ])  # fmt: skip
    result, _ = evaluate(sensor("stuck_orders", NOW), fresh_db)
    assert result.skip_message.startswith("stuck_orders: 1 found, 1 raised")
    assert marts.execute("select count(*) from ops.stuck_orders").fetchone()[0] == 4


def test_every_sensor_is_quiet_on_healthy_data_and_evaluates_fast(
    marts: psycopg.Connection, fresh_db: PgConn
) -> None:
    marts.execute(
        "insert into intermediate.int_orders (channel, platform_order_no, created_at) "
        "select c, c || g, %(now)s - g * interval '1 minute' "
        "from unnest(array['taobao', 'jd', 'pdd']) as c, generate_series(1, 360) as g",
        {"now": NOW},
    )
    assert {s.name for s in quality_sensors()} == {w.sensor_name for w in WATCHES}
    for watch in WATCHES:
        started = time.perf_counter()
        result, cursor = evaluate(build_watch_sensor(watch, clock=lambda: NOW), fresh_db)
        assert time.perf_counter() - started < watch.interval_seconds / 10
        assert result.skip_message == f"{watch.rule}: nothing found"
        assert json.loads(cursor) == {"evaluated_at": NOW.isoformat()}
    assert marts.execute("select count(*) from ops.alerts").fetchone()[0] == 0


def test_a_fresh_warehouse_is_nothing_to_watch_yet(fresh_db: PgConn) -> None:
    result, cursor = evaluate(sensor("delivery_timeout", NOW), fresh_db)
    assert "nothing to watch yet" in result.skip_message and "fct_delivery_timeout" in (
        result.skip_message
    )
    assert cursor is None
