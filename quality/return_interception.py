"""Return interception (rule `return_interception`): when a buyer cancels or asks for a refund
after the parcel left the warehouse, the merchant asks the carrier to stop it (拦截). Per
channel, over the orders whose after-sale happened in the last `window_days` (7), the share of
those interceptions that succeeded is under `success_threshold` (90 %), over at least
`min_attempts` (5) attempts.

An attempt: a shipped order with an after-sale (cancel, refund, or a platform's return
status such as JD's 退款 on a parcel on its way; a buyer's refusal at the door is not one) that
was on the order before the parcel reached the buyer. It succeeded when the parcel never
reached the buyer: no delivery, or the carrier's last event sends it back (`returning`,
`rejected`). It failed when the parcel was delivered and the platform's last change to the
order (`modified_at`, the after-sale) is not later than the delivery; an after-sale the
platform recorded after the delivery is a refund or return of delivered goods, nothing to
intercept. Reads `marts.order_holographic`; the table breaks the attempts down by carrier.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "return_interception"


class ReturnInterceptionParams(DetectorParams):
    success_threshold: float = Field(default=0.90, gt=0, le=1)
    window_days: float = Field(default=7, gt=0)
    min_attempts: int = Field(default=5, ge=1)


_ATTEMPTS = """
create temp table _interceptions on commit drop as
select
    channel,
    coalesce(carrier, '未知') as carrier,
    actual_delivery_at is null or last_track_event in ('returning', 'rejected') as succeeded
from marts.order_holographic
where shipped_at is not null
    and after_sale_kind in ('cancel', 'refund', 'return')
    and (
        actual_delivery_at is null
        or last_track_event in ('returning', 'rejected')
        or modified_at <= actual_delivery_at
    )
    and after_sale_at > %(start)s
    and after_sale_at <= %(now)s
"""

_FAILING = """
select
    channel,
    count(*) as attempts,
    count(*) filter (where succeeded) as succeeded,
    count(*) filter (where succeeded)::float8 / count(*) as success_rate
from _interceptions
group by channel
having count(*) >= %(min_attempts)s
    and count(*) filter (where succeeded)::float8 / count(*) < %(threshold)s
order by channel
"""

_BY_CARRIER = """
select channel, carrier, count(*) as attempts, count(*) filter (where succeeded) as succeeded
from _interceptions
where channel = any(%(channels)s)
group by channel, carrier
order by channel, count(*) desc, carrier
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """One alert per channel whose interception success rate is under the threshold."""
    p = parse_params(RULE, params, ReturnInterceptionParams)
    args = {
        "start": now - timedelta(days=p.window_days),
        "now": now,
        "min_attempts": p.min_attempts,
        "threshold": p.success_threshold,
    }
    with conn.transaction():
        conn.execute("drop table if exists _interceptions")
        conn.execute(_ATTEMPTS, args)
        failing = conn.execute(_FAILING, args).fetchall()
        if not failing:
            return []
        carriers = conn.execute(_BY_CARRIER, {"channels": [f[0] for f in failing]}).fetchall()
    return [_alert(row, [c for c in carriers if c[0] == row[0]], p) for row in failing]


def _alert(row: tuple, carriers: list[tuple], p: ReturnInterceptionParams) -> Alert:
    channel, attempts, succeeded, rate = row
    return Alert(
        rule=RULE,
        subject=(
            f"{channel}: return interceptions succeeded {rate:.0%} "
            f"({succeeded} of {attempts}), under {p.success_threshold:.0%}"
        ),
        facts={
            "channel": channel,
            "attempts": int(attempts),
            "succeeded": int(succeeded),
            "failed": int(attempts - succeeded),
            "success_rate": round(rate, 4),
            "window_days": p.window_days,
        },
        dedup_key=f"channel={channel}",
        table=[
            {
                "carrier": carrier,
                "attempts": int(n),
                "succeeded": int(ok),
                "success_rate": round(ok / n, 4),
            }
            for _, carrier, n, ok in carriers
        ],
    )
