"""Stuck orders (rule `stuck_orders`): a wave of orders stuck in one status, and every order
stuck past the red line flagged in `ops.stuck_orders` with the reason its data points to.

- Alert: for a watched status, the share of the orders now in it that have been there longer
  than `stuck_hours` (24) is above `share_threshold` (5 %), with at least `min_stuck_orders`.
- Red: every order in a watched status for longer than `red_hours` (48) has one row in
  `ops.stuck_orders` (channel, platform_order_no, status, since, reason_code, flagged_at,
  hours_stuck, reason_detail); an order that moved on leaves the table; `flagged_at` keeps
  the first time it was flagged.

Reason codes (the first that the order's data supports, in this order):

| code | the order's data |
|---|---|
| out_of_stock | one of its lines is `oversold` in ops.inventory_locks |
| address_unclear | no province, or the address could not be placed (cpca) |
| customs_rejected | cross-border without HS code or declared value |
| risk_review | held by risk (score above the line or missing customs data), undecided |
| manual_review | routing sent it to a person (freight share, no warehouse can ship it) |
| pickup_failed | the carrier failed to collect it |
| status_conflict | an impossible status change was recorded (platform, WMS, carrier disagree) |
| payment_review | still "paid, pending review": no decision has taken it up |
| awaiting_allocation | pending allocation: no warehouse chosen yet |
| warehouse_backlog | allocated or picking: the warehouse has not shipped it |
| awaiting_pickup | left the warehouse, the carrier has not collected it |
| carrier_stalled | in transit with no progress |

Watched statuses default to the ones in the merchant's hands before the carrier has the
parcel; `in_transit` can be added (`statuses`) but normal transit takes days.
Reads `marts.order_holographic` and `ops.inventory_locks`; set-based SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "stuck_orders"

REASON_CODES = (
    "out_of_stock",
    "address_unclear",
    "customs_rejected",
    "risk_review",
    "manual_review",
    "pickup_failed",
    "status_conflict",
    "payment_review",
    "awaiting_allocation",
    "warehouse_backlog",
    "awaiting_pickup",
    "carrier_stalled",
)

WatchedStatus = Literal[
    "paid_pending_review",
    "risk_review",
    "pending_allocation",
    "allocated",
    "picking",
    "awaiting_pickup",
    "pickup_failed",
    "in_transit",
]


class StuckOrdersParams(DetectorParams):
    stuck_hours: float = Field(default=24, gt=0)
    share_threshold: float = Field(default=0.05, gt=0, lt=1)
    red_hours: float = Field(default=48, gt=0)
    min_stuck_orders: int = Field(default=3, ge=1)
    statuses: tuple[WatchedStatus, ...] = (
        "paid_pending_review",
        "pending_allocation",
        "allocated",
        "picking",
        "awaiting_pickup",
        "pickup_failed",
    )


_CURRENT = """
create temp table _stuck_now on commit drop as
with orders as (
    select
        channel, platform_order_no, unified_status, province, is_address_parsed,
        is_cross_border, hs_code, declared_value, risk_state, review_decision,
        routing_decision, had_pickup_failure, status_violations, warehouse_id,
        coalesce(status_entered_at, paid_at, created_at) as since
    from marts.order_holographic
    where unified_status = any(%(statuses)s)
),

oversold as (
    select distinct channel, platform_order_no
    from ops.inventory_locks
    where state = 'oversold'
),

final as (
    select
        orders.channel,
        orders.platform_order_no,
        orders.unified_status as status,
        orders.since,
        round(extract(epoch from (%(now)s::timestamptz - orders.since)) / 3600.0, 1)
            as hours_stuck,
        orders.warehouse_id,
        case
            when oversold.channel is not null then 'out_of_stock'
            when orders.province is null or orders.is_address_parsed is false
                then 'address_unclear'
            when orders.is_cross_border
                and (orders.hs_code is null or orders.declared_value is null)
                then 'customs_rejected'
            when orders.unified_status = 'risk_review' or orders.risk_state = 'held'
                then 'risk_review'
            when orders.routing_decision = 'manual_review' then 'manual_review'
            when orders.unified_status = 'pickup_failed' or orders.had_pickup_failure
                then 'pickup_failed'
            when orders.status_violations > 0 then 'status_conflict'
            when orders.unified_status = 'paid_pending_review' then 'payment_review'
            when orders.unified_status = 'pending_allocation' then 'awaiting_allocation'
            when orders.unified_status in ('allocated', 'picking') then 'warehouse_backlog'
            when orders.unified_status = 'awaiting_pickup' then 'awaiting_pickup'
            else 'carrier_stalled'
        end as reason_code,
        concat_ws(
            '; ',
            case when oversold.channel is not null then 'oversold line' end,
            case when orders.province is null then 'no province' end,
            case when orders.is_cross_border then 'cross-border' end,
            case when orders.risk_state is not null then 'risk ' || orders.risk_state end,
            case when orders.routing_decision is not null
                then 'routing ' || orders.routing_decision end,
            case when orders.status_violations > 0
                then orders.status_violations || ' refused status changes' end,
            case when orders.warehouse_id is not null then 'warehouse ' || orders.warehouse_id end
        ) as reason_detail
    from orders
    left join oversold using (channel, platform_order_no)
)

select * from final
"""

_FLAG_RED = """
with red as (
    select * from _stuck_now where hours_stuck > %(red_hours)s
),

cleared as (
    delete from ops.stuck_orders as s
    where not exists (
        select 1 from red
        where red.channel = s.channel and red.platform_order_no = s.platform_order_no
    )
)

insert into ops.stuck_orders (
    channel, platform_order_no, status, since, reason_code, flagged_at, hours_stuck,
    reason_detail
)
select
    channel, platform_order_no, status, since, reason_code, %(now)s, hours_stuck, reason_detail
from red
on conflict (channel, platform_order_no) do update set
    status = excluded.status,
    since = excluded.since,
    reason_code = excluded.reason_code,
    hours_stuck = excluded.hours_stuck,
    reason_detail = excluded.reason_detail
"""

_WAVES = """
with per_status as (
    select
        status,
        count(*) as orders_in_status,
        count(*) filter (where hours_stuck > %(stuck_hours)s) as stuck_orders,
        count(*) filter (where hours_stuck > %(red_hours)s) as red_orders,
        min(since) filter (where hours_stuck > %(stuck_hours)s) as stuck_since
    from _stuck_now
    group by status
)

select status, orders_in_status, stuck_orders, red_orders, stuck_since,
    stuck_orders::float8 / orders_in_status as stuck_share
from per_status
where stuck_orders >= %(min_stuck)s
    and stuck_orders::float8 / orders_in_status > %(share)s
order by status
"""

_BREAKDOWN = """
select status, channel, reason_code, count(*) as stuck_orders,
    round(max(hours_stuck), 1) as max_hours
from _stuck_now
where hours_stuck > %(stuck_hours)s and status = any(%(statuses)s)
group by status, channel, reason_code
order by status, count(*) desc, channel, reason_code
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """Flag the red orders in `ops.stuck_orders` and return one alert per status with a wave
    of stuck orders. Writes and reads in one transaction."""
    p = parse_params(RULE, params, StuckOrdersParams)
    args = {
        "statuses": list(p.statuses),
        "now": now,
        "stuck_hours": p.stuck_hours,
        "red_hours": p.red_hours,
        "share": p.share_threshold,
        "min_stuck": p.min_stuck_orders,
    }
    with conn.transaction():
        conn.execute("drop table if exists _stuck_now")
        conn.execute(_CURRENT, args)
        conn.execute(_FLAG_RED, args)
        waves = conn.execute(_WAVES, args).fetchall()
        if not waves:
            return []
        args["statuses"] = [w[0] for w in waves]
        breakdown = conn.execute(_BREAKDOWN, args).fetchall()
    return [_alert(wave, [b for b in breakdown if b[0] == wave[0]], p) for wave in waves]


def _alert(wave: tuple, breakdown: list[tuple], p: StuckOrdersParams) -> Alert:
    status, in_status, stuck, red, stuck_since, share = wave
    reasons: dict[str, int] = {}
    channels: dict[str, int] = {}
    for _, channel, reason, count, _ in breakdown:
        reasons[reason] = reasons.get(reason, 0) + count
        channels[channel] = channels.get(channel, 0) + count
    return Alert(
        rule=RULE,
        subject=(
            f"{stuck} of {in_status} orders stuck in {status} over {p.stuck_hours:g} h "
            f"({share:.1%}), {red} past {p.red_hours:g} h"
        ),
        facts={
            "status": status,
            "orders_in_status": int(in_status),
            "stuck_orders": int(stuck),
            "stuck_share": round(float(share), 4),
            "red_orders": int(red),
            "stuck_since": stuck_since.isoformat(),
            "channels": channels,
            "reason_codes": reasons,
        },
        dedup_key=f"status={status}",
        table=[
            {
                "channel": channel,
                "reason_code": reason,
                "stuck_orders": int(count),
                "max_hours": float(max_hours),
            }
            for _, channel, reason, count, max_hours in breakdown[:20]
        ],
    )
