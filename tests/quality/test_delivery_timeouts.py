"""Delivery timeouts: a province above 15 % three Beijing days running alerts with a 7-day
chart of its rate and its warehouses' and carriers' figures; two bad days, a gap in the run,
or too few orders due do not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from quality import delivery_timeouts
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 17:00 in Beijing
TODAY = date(2026, 11, 20)
PARAMS = {"rate_threshold": 0.15, "consecutive_days": 3, "chart_days": 7}


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "marts.fct_delivery_timeout_region_daily", "marts.order_holographic")
        yield c


def days(province: str, rates: list[float], due: int = 20) -> list[dict]:
    """Daily rows ending yesterday, oldest first."""
    first = TODAY - timedelta(days=len(rates))
    return [
        {
            "province": province,
            "day": first + timedelta(days=k),
            "orders_due": due,
            "orders_late": round(rate * due),
            "timeout_rate": rate,
        }
        for k, rate in enumerate(rates)
    ]


def test_three_bad_days_running_alert_with_chart_and_warehouse_table(
    conn: psycopg.Connection,
) -> None:
    rows = days("广东省", [0.05, 0.05, 0.05, 0.05, 0.2, 0.25, 0.3]) + days("浙江省", [0.05] * 7)
    insert(conn, "marts.fct_delivery_timeout_region_daily", rows)
    promised = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)
    orders = [
        {"channel": "jd", "platform_order_no": f"J{i}", "province": "广东省",
         "warehouse_id": "WH-GZ", "warehouse_name": "广州仓", "carrier": "zto",
         "promised_delivery_at": promised, "is_delivery_late": i < 6,
         "unified_status": "delivered"}
        for i in range(10)
    ] + [
        {"channel": "jd", "platform_order_no": f"B{i}", "province": "浙江省",
         "warehouse_id": "WH-GZ", "warehouse_name": "广州仓", "carrier": "sf",
         "promised_delivery_at": None, "is_delivery_late": False, "unified_status": "picking"}
        for i in range(4)
    ]  # fmt: skip
    insert(conn, "marts.order_holographic", orders)

    [alert] = delivery_timeouts.detect(conn, PARAMS, NOW)
    assert alert.dedup_key == "region=广东省"
    assert alert.facts["first_day"] == "2026-11-17" and alert.facts["last_day"] == "2026-11-19"
    assert alert.facts["days"] == 3 and alert.facts["orders_late"] == 15
    chart = alert.chart
    assert chart is not None and chart.threshold == 0.15
    assert chart.x == [(TODAY - timedelta(days=k)).isoformat() for k in range(7, 0, -1)]
    assert chart.series["timeout rate"] == [0.05, 0.05, 0.05, 0.05, 0.2, 0.25, 0.3]
    assert alert.table == [
        {"warehouse": "广州仓", "carrier": "zto", "orders_due": 10, "orders_late": 6,
         "late_rate": 0.6, "warehouse_backlog": 4},
    ]  # fmt: skip

    # the cursor has passed the run's last day: nothing new
    assert delivery_timeouts.detect(conn, PARAMS, NOW, since=NOW) == []
    assert len(delivery_timeouts.detect(conn, PARAMS, NOW, since=NOW - timedelta(days=1))) == 1


def test_two_bad_days_a_broken_run_or_few_orders_stay_quiet(conn: psycopg.Connection) -> None:
    rows = (
        days("广东省", [0.05, 0.05, 0.3, 0.3])
        + days("四川省", [0.3, 0.3, 0.1, 0.3, 0.3])
        + days("西藏自治区", [0.5, 0.5, 0.5, 0.5], due=2)
    )
    # tomorrow's promises are not due yet: never read
    rows += [{"province": "浙江省", "day": TODAY + timedelta(days=k), "orders_due": 9,
              "orders_late": 9, "timeout_rate": 1} for k in range(1, 4)]  # fmt: skip
    insert(conn, "marts.fct_delivery_timeout_region_daily", rows)
    assert delivery_timeouts.detect(conn, PARAMS, NOW) == []
