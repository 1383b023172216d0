"""Cross-platform price difference (rule `price_difference`): a SKU sold on two or more
channels whose average unit price on one channel is more than `share_threshold` (0.8 %) above
the cheapest channel's, over at least `min_lines` order lines on that channel.

Reads `marts.fct_cross_platform_price_diff` (per SKU and channel: average unit price, the
cheapest channel's, the difference rate). One alert per SKU with every channel's price in its
table.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "price_difference"


class PriceDifferenceParams(DetectorParams):
    share_threshold: float = Field(default=0.008, gt=0, lt=1)
    min_lines: int = Field(default=1, ge=1)


_PRICES = """
with above as (
    select distinct sku
    from marts.fct_cross_platform_price_diff
    where channels_selling >= 2
        and lines >= %(min_lines)s
        and price_diff_rate > %(threshold)s
)

select
    sku, channel, lines, units, avg_unit_price::float8, cheapest_channel_price::float8,
    price_diff_rate::float8
from marts.fct_cross_platform_price_diff
where sku in (select sku from above)
order by sku, avg_unit_price desc, channel
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """One alert per SKU priced differently across channels beyond the threshold."""
    p = parse_params(RULE, params, PriceDifferenceParams)
    rows = conn.execute(
        _PRICES, {"threshold": p.share_threshold, "min_lines": p.min_lines}
    ).fetchall()
    by_sku: dict[str, list[tuple]] = {}
    for row in rows:
        by_sku.setdefault(row[0], []).append(row)
    return [_alert(sku, channels, p) for sku, channels in by_sku.items()]


def _alert(sku: str, channels: list[tuple], p: PriceDifferenceParams) -> Alert:
    dearest = channels[0]
    cheapest = min(channels, key=lambda r: (r[4], r[1]))
    return Alert(
        rule=RULE,
        subject=(
            f"{sku}: {dearest[1]} sells {dearest[6]:.1%} above {cheapest[1]} "
            f"({dearest[4]:.2f} vs {cheapest[4]:.2f} yuan)"
        ),
        facts={
            "sku": sku,
            "dearest_channel": dearest[1],
            "dearest_price": dearest[4],
            "cheapest_channel": cheapest[1],
            "cheapest_price": cheapest[4],
            "price_diff_rate": round(dearest[6], 4),
            "threshold": p.share_threshold,
            "channels_above": [r[1] for r in channels if r[6] > p.share_threshold],
        },
        dedup_key=f"sku={sku}",
        table=[
            {
                "channel": channel,
                "lines": int(lines),
                "units": int(units),
                "avg_unit_price": price,
                "price_diff_rate": rate,
            }
            for _, channel, lines, units, price, _, rate in channels
        ],
    )
