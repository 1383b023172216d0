"""Order pulse: a channel that stopped sending orders while the others flow (rule `order_pulse`).

A channel is silent when the time between two of its orders (or from its last order to `now`)
exceeds its quiet time (`quiet_minutes[channel]`, else `default_quiet_minutes`) and, during that
gap, the other channels kept flowing: they placed at least `min_other_orders` orders, and at the
channel's usual share of all traffic over the look-back it should have had at least
`min_expected_orders` of its own. The second test keeps small channels (a POS till, a regional
SFTP export) and quiet nights from alarming: 0 orders where 8 were expected happens by chance
about once in 3,000 gaps (Poisson).

Reads `intermediate.int_orders` (created_at, the platform's order time): set-based, one query.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "order_pulse"


class OrderPulseParams(DetectorParams):
    default_quiet_minutes: float = Field(default=60, gt=0)
    quiet_minutes: dict[str, float] = Field(default_factory=dict)
    min_other_orders: int = Field(default=10, ge=1)
    min_expected_orders: float = Field(default=8, gt=0)
    lookback_hours: float = Field(default=48, gt=0)


_GAPS = """
with orders as (
    select channel, created_at
    from intermediate.int_orders
    where created_at >= %(start)s and created_at <= %(now)s
),

quiet as (
    select channel, coalesce((%(quiet)s::jsonb ->> channel)::float8, %(default_quiet)s) as minutes
    from (select distinct channel from orders) as channels
),

shares as (
    select channel, count(*)::float8 / sum(count(*)) over () as share
    from orders
    group by channel
),

-- each order with the one before it, plus `now` closing the channel's open gap
marks as (
    select channel, created_at from orders
    union all
    select channel, %(now)s::timestamptz from quiet
),

gaps as (
    select
        channel,
        lag(created_at) over (partition by channel order by created_at) as silent_from,
        created_at as silent_until
    from marks
),

long_gaps as (
    select gaps.channel, gaps.silent_from, gaps.silent_until, quiet.minutes as quiet_minutes
    from gaps
    join quiet using (channel)
    where gaps.silent_from is not null
        and gaps.silent_until > %(since)s
        and gaps.silent_until - gaps.silent_from > quiet.minutes * interval '1 minute'
),

others as (
    select long_gaps.channel, long_gaps.silent_from, count(o.created_at) as other_orders
    from long_gaps
    left join orders as o
        on o.channel <> long_gaps.channel
        and o.created_at > long_gaps.silent_from
        and o.created_at < long_gaps.silent_until
    group by long_gaps.channel, long_gaps.silent_from
),

final as (
    select
        long_gaps.channel,
        long_gaps.silent_from,
        long_gaps.silent_until,
        long_gaps.silent_until = %(now)s::timestamptz as still_silent,
        long_gaps.quiet_minutes,
        others.other_orders,
        others.other_orders * shares.share / nullif(1 - shares.share, 0) as expected_orders
    from long_gaps
    join others using (channel, silent_from)
    join shares using (channel)
)

select * from final
where other_orders >= %(min_other)s and expected_orders >= %(min_expected)s
order by channel, silent_from
"""


def detect(
    conn: psycopg.Connection,
    params: object,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """One alert per channel silent past its quiet time since `since` (or over the look-back)."""
    p = parse_params(RULE, params, OrderPulseParams)
    start = now - timedelta(hours=p.lookback_hours)
    rows = conn.execute(
        _GAPS,
        {
            "start": start,
            "now": now,
            "since": max(since or start, start),
            "quiet": json.dumps(p.quiet_minutes),
            "default_quiet": p.default_quiet_minutes,
            "min_other": p.min_other_orders,
            "min_expected": p.min_expected_orders,
        },
    ).fetchall()
    longest: dict[str, tuple] = {}
    for row in rows:  # a handful of gaps: keep each channel's longest
        channel, silent_from, silent_until = row[0], row[1], row[2]
        best = longest.get(channel)
        if best is None or silent_until - silent_from > best[2] - best[1]:
            longest[channel] = row
    return [_alert(row) for row in longest.values()]


def _alert(row: tuple) -> Alert:
    channel, silent_from, silent_until, still, quiet, other, expected = row
    minutes = round((silent_until - silent_from).total_seconds() / 60)
    state = "silent" if still else "was silent"
    return Alert(
        rule=RULE,
        subject=f"{channel} {state} for {minutes} min while other channels kept ordering",
        facts={
            "channel": channel,
            "silent_from": silent_from.isoformat(),
            "silent_until": None if still else silent_until.isoformat(),
            "silent_minutes": minutes,
            "still_silent": bool(still),
            "quiet_minutes": float(quiet),
            "other_channels_orders": int(other),
            "expected_orders": round(float(expected), 1),
        },
        dedup_key=f"channel={channel}",
    )
