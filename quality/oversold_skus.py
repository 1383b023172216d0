"""Oversold SKUs (rule `inventory_oversold`): a SKU with open order lines that no stock covers
(`state = 'oversold'` in `ops.inventory_locks`: paid, first paid first served, and the units
were not there), with at least `min_units` units short.

One alert per SKU: orders, units short, warehouses, channels and the oldest payment waiting.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "inventory_oversold"


class OversoldParams(DetectorParams):
    min_units: int = Field(default=1, ge=1)


_OVERSOLD = """
select
    sku,
    count(distinct (channel, platform_order_no)) as orders,
    sum(qty) as units,
    array_agg(distinct warehouse_id order by warehouse_id) as warehouses,
    array_agg(distinct channel order by channel) as channels,
    min(paid_at) as oldest_paid_at
from ops.inventory_locks
where state = 'oversold' and sku is not null
group by sku
having sum(qty) >= %(min_units)s
order by sku
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """One alert per oversold SKU."""
    p = parse_params(RULE, params, OversoldParams)
    rows = conn.execute(_OVERSOLD, {"min_units": p.min_units}).fetchall()
    return [
        Alert(
            rule=RULE,
            subject=f"{sku} oversold: {units} units on {orders} paid orders without stock",
            facts={
                "sku": sku,
                "orders": int(orders),
                "units_short": int(units),
                "warehouses": list(warehouses),
                "channels": list(channels),
                "oldest_paid_at": oldest.isoformat() if oldest else None,
            },
            dedup_key=f"sku={sku}",
        )
        for sku, orders, units, warehouses, channels, oldest in rows
    ]
