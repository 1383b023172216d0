"""Every detector on a real dbt-built warehouse (the sandbox's small world through the real
connectors' loading and every dbt model): the SQL matches the real marts' columns and types,
each detector builds its alerts from real rows (thresholds loosened and a few rows planted
so that each finds something), and each evaluates well inside its sensor's interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from kernel.database import PgConn
from quality.alerts import Alert
from quality.watches import WATCHES
from tests.dbt.conftest import drop_database, new_database, run_dbt
from tests.dbt.sample_raw import END, load_merchant_systems_records, load_sample_orders, small_world

pytestmark = pytest.mark.slow

# loosened so that the small world trips each detector (the real thresholds would stay quiet)
LOOSE = {
    "order_pulse": {"default_quiet_minutes": 1, "min_other_orders": 1, "min_expected_orders": 0.1,
                    "lookback_hours": 72},
    "stuck_orders": {"stuck_hours": 0.01, "share_threshold": 0.01, "red_hours": 0.02,
                     "min_stuck_orders": 1, "statuses": ["paid_pending_review", "in_transit"]},
    "delivery_timeout": {"rate_threshold": 0.0001, "consecutive_days": 1, "min_orders_due": 1},
    "price_difference": {"share_threshold": 0.0001},
    "return_interception": {"success_threshold": 1.0, "min_attempts": 1, "window_days": 30},
    "cs_escalation": {"asks_threshold": 1},
    "inventory_oversold": {},
    "stock_below_safety": {},
    "stock_mismatch": {},
    "health_index": {"ohi_threshold": 80},
}  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(pg: PgConn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgConn]:
    conn = new_database(pg)
    world = small_world()
    with psycopg.connect(conn.url()) as db:
        load_sample_orders(db, world.orders)
        load_merchant_systems_records(db, world)
    # only the models the detectors read and what they need (no tests): the build is the cost
    models = [
        "+order_holographic",
        "+fct_delivery_timeout_region_daily",
        "+fct_cross_platform_price_diff",
        "+fct_cs_tickets",
        "+order_health_daily",
    ]
    run_dbt(conn, tmp_path_factory.mktemp("dbt_detectors"), "build", "--select", *models,
            "--exclude", "resource_type:test", "resource_type:unit_test")  # fmt: skip
    with psycopg.connect(conn.url(), autocommit=True) as db:
        # what the small world has none of: an oversold line, a paused SKU, a SKU dearer on
        # one channel, a refund after shipping (an interception that failed), a poor OHI
        sku = db.execute("select sku from marts.fct_order_items limit 1").fetchone()[0]
        db.execute(
            "insert into ops.inventory_locks (channel, platform_order_no, sku, warehouse_id, "
            "qty, state, paid_at) select channel, platform_order_no, %s, '-', 1, 'oversold', "
            "paid_at from marts.fct_orders where paid_at is not null limit 1",
            (sku,),
        )
        db.execute(
            "insert into ops.pause_sale (sku, reason, since, sellable, threshold) "
            "values (%s, 'below safety stock', %s, 1, 5)",
            (sku, END - timedelta(hours=1)),
        )
        # the hourly reconciliation found this SKU 6 units off on one platform
        db.execute(
            "insert into ops.stock_reconciliation (sku, warehouse_id, platform, wms_qty, "
            "platform_qty, diff, checked_at, tolerance, first_seen_at) "
            "values (%s, 'ALL', 'taobao', 10, 16, 6, %s, 3, %s)",
            (sku, END, END),
        )
        db.execute(
            "update marts.fct_order_items set line_goods_value = line_goods_value * 1.05, "
            "unit_price = unit_price * 1.05 where (sku, channel) = (select sku, channel "
            "from marts.fct_cross_platform_price_diff where channels_selling > 1 "
            "order by sku, channel limit 1)"
        )
        db.execute(
            "update marts.order_holographic set after_sale_kind = 'refund', after_sale_at = %s, "
            "modified_at = actual_delivery_at "
            "where ctid = (select ctid from marts.order_holographic "
            "where shipped_at is not null and actual_delivery_at is not null limit 1)",
            (END - timedelta(hours=1),),
        )
        db.execute(
            "update marts.order_health_daily set ohi = 70, consistency = 40 where ctid = ("
            "select ctid from marts.order_health_daily order by day desc, channel limit 1)"
        )
    yield conn
    drop_database(pg, conn)


def test_every_detector_runs_on_the_real_marts(warehouse: PgConn) -> None:
    found: dict[str, list[Alert]] = {}
    with psycopg.connect(warehouse.url(), autocommit=True) as conn:
        for watch in WATCHES:
            started = time.perf_counter()
            now = END + timedelta(days=3) if watch.rule == "delivery_timeout" else END
            found[watch.rule] = watch.detect(conn, LOOSE[watch.rule], now)
            elapsed = time.perf_counter() - started
            assert elapsed < watch.interval_seconds / 20, (watch.rule, elapsed)
        red = conn.execute("select count(*), count(distinct reason_code) from ops.stuck_orders")
        assert red.fetchone()[0] > 0
    assert {rule for rule, alerts in found.items() if alerts} == {w.rule for w in WATCHES}
    for alerts in found.values():
        for alert in alerts:
            assert alert.rule in LOOSE and alert.dedup_key and alert.subject
    timeout = found["delivery_timeout"][0]
    assert timeout.chart is not None and len(timeout.chart.x) == 7 and timeout.table
