"""Delivery timeouts (rule `delivery_timeout`): a region (receiver province) whose delivery
timeout rate stayed above `rate_threshold` (15 %) for `consecutive_days` (3) Beijing days
running, each day with at least `min_orders_due` orders due.

The alert carries a `chart_days` (7) day chart of the region's daily rate ending on the last
day of the run, and a table of the region's orders due in that window by warehouse and
carrier (due, late, late rate) beside each warehouse's current backlog (orders allocated,
picking, awaiting or failing pickup, all regions): is it the carrier or the warehouse?

Reads `marts.fct_delivery_timeout_region_daily` (one row per province and local day of the
promised delivery) and `marts.order_holographic` for the table; days after `now`'s Beijing
date are not looked at (their promises are not due yet).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from pydantic import Field

from quality.alerts import Alert, Chart
from quality.detector_params import DetectorParams, parse_params

RULE = "delivery_timeout"
BEIJING = ZoneInfo("Asia/Shanghai")


class DeliveryTimeoutParams(DetectorParams):
    rate_threshold: float = Field(default=0.15, gt=0, lt=1)
    consecutive_days: int = Field(default=3, ge=1)
    chart_days: int = Field(default=7, ge=1)
    min_orders_due: int = Field(default=5, ge=1)
    lookback_days: int = Field(default=14, ge=1)


# islands of consecutive breach days per province (day minus its rank is constant in a run)
_RUNS = """
with daily as (
    select province, day, orders_due, timeout_rate::float8 as timeout_rate
    from marts.fct_delivery_timeout_region_daily
    where day between %(first)s and %(today)s
),

breaches as (
    select
        province,
        day,
        day - (row_number() over (partition by province order by day))::int as island
    from daily
    where timeout_rate > %(threshold)s and orders_due >= %(min_due)s
),

runs as (
    select province, min(day) as first_day, max(day) as last_day, count(*) as days
    from breaches
    group by province, island
),

final as (
    select distinct on (province) province, first_day, last_day, days
    from runs
    where days >= %(consecutive)s and last_day >= %(since_day)s
    order by province, last_day desc
)

select * from final order by province
"""

_SERIES = """
select province, day, orders_due, orders_late, timeout_rate::float8
from marts.fct_delivery_timeout_region_daily
where province = any(%(provinces)s) and day between %(first)s and %(today)s
"""

_TABLE = """
with due as (
    select
        warehouse_id,
        coalesce(warehouse_name, warehouse_id, '未知') as warehouse,
        coalesce(carrier, '未知') as carrier,
        count(*) as orders_due,
        count(*) filter (where is_delivery_late) as orders_late
    from marts.order_holographic
    where coalesce(province, '未知') = %(province)s
        and (promised_delivery_at at time zone 'Asia/Shanghai')::date
            between %(first)s and %(last)s
    group by 1, 2, 3
),

backlog as (
    select warehouse_id, count(*) as backlog
    from marts.order_holographic
    where unified_status in ('allocated', 'picking', 'awaiting_pickup', 'pickup_failed')
        and warehouse_id is not null
    group by 1
)

select
    due.warehouse,
    due.carrier,
    due.orders_due,
    due.orders_late,
    round(due.orders_late::numeric / nullif(due.orders_due, 0), 4)::float8 as late_rate,
    coalesce(backlog.backlog, 0) as warehouse_backlog
from due
left join backlog using (warehouse_id)
order by due.orders_late desc, due.orders_due desc, due.warehouse, due.carrier
limit 15
"""


def detect(
    conn: psycopg.Connection,
    params: object,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """One alert per province whose latest run of breach days is long enough and ends on or
    after `since`'s Beijing day (every run in the look-back without `since`)."""
    p = parse_params(RULE, params, DeliveryTimeoutParams)
    today = now.astimezone(BEIJING).date()
    first = today - timedelta(days=p.lookback_days)
    since_day = since.astimezone(BEIJING).date() if since else first
    runs = conn.execute(
        _RUNS,
        {
            "first": first,
            "today": today,
            "threshold": p.rate_threshold,
            "min_due": p.min_orders_due,
            "consecutive": p.consecutive_days,
            "since_day": since_day,
        },
    ).fetchall()
    if not runs:
        return []
    series: dict[tuple[str, date], tuple] = {
        (r[0], r[1]): r
        for r in conn.execute(
            _SERIES,
            {
                "provinces": [r[0] for r in runs],
                "first": first - timedelta(days=p.chart_days),
                "today": today,
            },
        )
    }
    return [_alert(conn, run, series, p) for run in runs]


def _alert(
    conn: psycopg.Connection,
    run: tuple,
    series: dict[tuple[str, date], tuple],
    p: DeliveryTimeoutParams,
) -> Alert:
    province, first_day, last_day, days = run
    chart_days = [last_day - timedelta(days=k) for k in range(p.chart_days - 1, -1, -1)]
    rates = [float(series[(province, d)][4] or 0) if (province, d) in series else 0.0
             for d in chart_days]  # fmt: skip
    run_rows = [series[(province, first_day + timedelta(days=k))] for k in range(days)]
    due = sum(r[2] for r in run_rows)
    late = sum(r[3] for r in run_rows)
    table = conn.execute(
        _TABLE, {"province": province, "first": chart_days[0], "last": last_day}
    ).fetchall()
    return Alert(
        rule=RULE,
        subject=(
            f"{province}: delivery timeout rate above {p.rate_threshold:.0%} "
            f"{days} days running ({first_day} to {last_day})"
        ),
        facts={
            "region": province,
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
            "days": int(days),
            "orders_due": int(due),
            "orders_late": int(late),
            "timeout_rate": round(late / due, 4) if due else None,
            "daily_rates": {r[1].isoformat(): round(float(r[4]), 4) for r in run_rows},
        },
        dedup_key=f"region={province}",
        chart=Chart(
            title=f"{province} delivery timeout rate, last {p.chart_days} days",
            x=[d.isoformat() for d in chart_days],
            series={"timeout rate": rates},
            threshold=p.rate_threshold,
            y_label="share of orders due delivered late",
        ),
        table=[
            {
                "warehouse": warehouse,
                "carrier": carrier,
                "orders_due": int(orders_due),
                "orders_late": int(orders_late),
                "late_rate": late_rate,
                "warehouse_backlog": int(backlog),
            }
            for warehouse, carrier, orders_due, orders_late, late_rate, backlog in table
        ],
    )
