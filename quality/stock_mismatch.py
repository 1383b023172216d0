"""Platform stock off the WMS (rule `stock_mismatch`): the hourly reconciliation
(`ops.stock_reconciliation`, written by fulfillment's reconciliation step) lists each SKU and
platform whose displayed stock differs from the WMS's available by more than its tolerance
(config/inventory.yaml, 3). The seeds' hourly ±3 check: a platform that shows more than the
warehouse holds sells units that are not there.

One alert per SKU (every platform it is off on), at least `tolerance` units apart.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "stock_mismatch"


class StockMismatchParams(DetectorParams):
    tolerance: int = Field(default=3, ge=0)


_MISMATCHES = """
select
    sku,
    array_agg(platform order by platform) as platforms,
    array_agg(platform_qty order by platform) as platform_qty,
    max(wms_qty) as wms_qty,
    max(abs(diff)) as worst_diff,
    min(first_seen_at) as first_seen_at
from ops.stock_reconciliation
where abs(diff) > %(tolerance)s
group by sku
order by sku
"""


def detect(conn: psycopg.Connection, params: object, now: datetime) -> list[Alert]:
    """One alert per SKU whose displayed stock is off the WMS's on some platform."""
    p = parse_params(RULE, params, StockMismatchParams)
    rows = conn.execute(_MISMATCHES, {"tolerance": p.tolerance}).fetchall()
    return [
        Alert(
            rule=RULE,
            subject=(
                f"{sku}: {', '.join(platforms)} show stock {worst} units off the WMS "
                f"(WMS available {wms})"
            ),
            facts={
                "sku": sku,
                "platforms": list(platforms),
                "platform_qty": [int(q) if q is not None else None for q in qty],
                "wms_available": int(wms) if wms is not None else None,
                "worst_diff": int(worst),
                "first_seen_at": first.isoformat() if first else None,
            },
            dedup_key=f"sku={sku}",
        )
        for sku, platforms, qty, wms, worst, first in rows
    ]
