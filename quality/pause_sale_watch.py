"""New pause-sale SKUs (rule `stock_below_safety`): stock under the safety threshold already
puts a SKU on `ops.pause_sale` (fulfillment/inventory_store.py); this tells the warehouse about
the SKUs that went on it since the last look (`since` the cursor), in one alert with the list.

The ±3 platform-vs-WMS stock check (rule `stock_mismatch`) is not here: no platform stock
is loaded yet (`ops.stock_reconciliation` is empty), so there is nothing to compare.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "stock_below_safety"


class PauseSaleParams(DetectorParams):
    max_listed: int = Field(default=50, ge=1)


_NEW = """
select sku, sellable, threshold, since, reason
from ops.pause_sale
where since > %(since)s and since <= %(now)s
order by since, sku
"""


def detect(
    conn: psycopg.Connection,
    params: object,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """One alert listing the SKUs paused after `since` (all paused SKUs without it)."""
    p = parse_params(RULE, params, PauseSaleParams)
    rows = conn.execute(
        _NEW, {"since": since or datetime.min.replace(tzinfo=now.tzinfo), "now": now}
    ).fetchall()
    if not rows:
        return []
    skus = [r[0] for r in rows]
    shown = ", ".join(skus[:5]) + (f" and {len(skus) - 5} more" if len(skus) > 5 else "")
    # the same set of SKUs is one incident; a new set is news
    digest = hashlib.sha1(",".join(sorted(skus)).encode()).hexdigest()[:12]
    return [
        Alert(
            rule=RULE,
            subject=f"{len(skus)} SKU(s) below safety stock, sale paused: {shown}",
            facts={"skus": skus[: p.max_listed], "paused_skus": len(skus)},
            dedup_key=f"skus={digest}",
            table=[
                {
                    "sku": sku,
                    "sellable": sellable,
                    "threshold": threshold,
                    "since": paused.isoformat() if paused else None,
                    "reason": reason,
                }
                for sku, sellable, threshold, paused, reason in rows[: p.max_listed]
            ],
        )
    ]
