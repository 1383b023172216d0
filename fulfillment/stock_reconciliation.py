"""The hourly platform-vs-WMS stock reconciliation (库存对账): for every SKU and platform, the
units the platform shows on sale against the WMS's available units; a difference beyond the
tolerance (`config/inventory.yaml` `reconciliation.tolerance`, the seeds' ±3) is a row in
`ops.stock_reconciliation`.

WMS available = on hand (the WMS's latest row per warehouse, summed over warehouses) less the
units OrderPulse's locks hold: what the platforms may still sell. The platforms show one number
over every warehouse, so a row's `warehouse_id` is `ALL`. Before reading, the current freezes
and pauses are pushed (`inventory_platform_push`), so a difference is the platform's own drift
(or a push that did not arrive), never OrderPulse's lag. A SKU the platform does not list
counts as 0 there; a SKU only the platform lists has 0 available in the WMS.

`ops.stock_reconciliation` is the current list: a run replaces the rows of every platform it
read (a SKU back within the tolerance goes; one still off keeps its `first_seen_at`); a
platform that could not be read keeps its earlier rows. Runs under the inventory locks'
advisory lock, so no lock run moves the numbers between the push and the comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import psycopg

from fulfillment.frames import copy_frame, read_frame
from fulfillment.inventory_platform_push import (
    PlatformStockApi,
    PushReport,
    platform_frame,
    push_platform_stock,
    save_read,
)
from fulfillment.inventory_rules import InventoryRules
from fulfillment.inventory_store import LOCK_ADVISORY
from fulfillment.ops_schema import ensure_ops_tables

ALL_WAREHOUSES = "ALL"
DIFF_COLUMNS = (
    "sku",
    "warehouse_id",
    "platform",
    "wms_qty",
    "platform_qty",
    "diff",
    "wms_on_hand",
    "wms_locked",
    "platform_withheld",
    "platform_paused",
    "tolerance",
)

# per SKU over every warehouse: on hand (the WMS's latest row each) less OrderPulse's locks
_WMS_AVAILABLE = """
with stock as (
    select distinct on (warehouse_id, sku) warehouse_id, sku, greatest(on_hand, 0) as on_hand
    from staging.stg_merchant_systems__wms_stock
    where warehouse_id is not null and sku is not null
    order by warehouse_id, sku, last_sync_at desc nulls last
),
on_hand as (
    select sku, sum(on_hand)::integer as on_hand from stock group by sku
),
locked as (
    select sku, sum(qty)::integer as locked
    from ops.inventory_locks
    where state = 'locked'
    group by sku
)
select o.sku, o.on_hand, coalesce(l.locked, 0) as locked,
       o.on_hand - coalesce(l.locked, 0) as available
from on_hand o
left join locked l using (sku)
"""

_REPLACE = """
delete from ops.stock_reconciliation r
where r.platform = any(%(platforms)s)
    and not exists (
        select 1 from _stock_diff d
        where d.sku = r.sku and d.warehouse_id = r.warehouse_id and d.platform = r.platform
    )
"""

_UPSERT = """
insert into ops.stock_reconciliation as r
    (sku, warehouse_id, platform, wms_qty, platform_qty, diff, checked_at, wms_on_hand,
     wms_locked, platform_withheld, platform_paused, tolerance, first_seen_at)
select sku, warehouse_id, platform, wms_qty, platform_qty, diff, %(now)s::timestamptz,
       wms_on_hand, wms_locked, platform_withheld, platform_paused, tolerance,
       %(now)s::timestamptz
from _stock_diff
on conflict (sku, warehouse_id, platform) do update set
    wms_qty = excluded.wms_qty, platform_qty = excluded.platform_qty, diff = excluded.diff,
    checked_at = excluded.checked_at, wms_on_hand = excluded.wms_on_hand,
    wms_locked = excluded.wms_locked, platform_withheld = excluded.platform_withheld,
    platform_paused = excluded.platform_paused, tolerance = excluded.tolerance
"""


@dataclass
class ReconciliationReport:
    compared: dict[str, int] = field(default_factory=dict)  # platform -> SKUs compared
    differences: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # platform -> why it was not read
    push: PushReport | None = None
    examples: pd.DataFrame | None = None


def compare_stock(platform: pd.DataFrame, wms: pd.DataFrame, tolerance: int) -> pd.DataFrame:
    """The SKUs whose platform number differs from the WMS's available by more than
    `tolerance`, per platform. `platform`: channel, sku, sellable, withheld, paused (one or
    more channels); `wms`: sku, on_hand, locked, available. Returns DIFF_COLUMNS."""
    if platform.empty:
        return pd.DataFrame(columns=list(DIFF_COLUMNS))
    channels = platform[["channel"]].drop_duplicates()
    # every (platform, SKU) either side knows
    grid = channels.merge(wms[["sku"]].drop_duplicates(), how="cross")
    keys = pd.concat([grid, platform[["channel", "sku"]]]).drop_duplicates()
    df = keys.merge(platform, on=["channel", "sku"], how="left").merge(wms, on="sku", how="left")
    df["platform_qty"] = pd.to_numeric(df["sellable"]).fillna(0).astype(int)
    df["wms_qty"] = pd.to_numeric(df["available"]).fillna(0).astype(int)
    df["diff"] = df["platform_qty"] - df["wms_qty"]
    df = df[df["diff"].abs() > tolerance].copy()
    df["warehouse_id"] = ALL_WAREHOUSES
    df["platform"] = df["channel"]
    df["wms_on_hand"] = pd.to_numeric(df["on_hand"]).fillna(0).astype(int)
    df["wms_locked"] = pd.to_numeric(df["locked"]).fillna(0).astype(int)
    df["platform_withheld"] = pd.to_numeric(df["withheld"]).astype("Int64")
    df["platform_paused"] = df["paused"].astype("boolean")
    df["tolerance"] = int(tolerance)
    df = df.sort_values(["platform", "sku"])
    return df[list(DIFF_COLUMNS)].reset_index(drop=True)


def reconcile_stock(
    conn: psycopg.Connection,
    apis: Mapping[str, PlatformStockApi],
    rules: InventoryRules,
    now: datetime,
) -> ReconciliationReport:
    """Push, read every platform's stock, compare with the WMS, write the differences."""
    ensure_ops_tables(conn)
    report = ReconciliationReport()
    tolerance = rules.reconciliation.tolerance
    with conn.transaction():
        # the locks stay as they are from the push to the comparison
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [LOCK_ADVISORY])
        report.push = push_platform_stock(conn, apis, now)
        frames = []
        for channel, api in apis.items():
            try:
                frames.append(platform_frame(channel, api.read_stock()))
            except Exception as err:  # the client already retried: report it, go on
                report.errors[channel] = f"{type(err).__name__}: {err}"
        read = pd.concat(frames, ignore_index=True) if frames else platform_frame("-", [])
        save_read(conn, read, now)
        wms = read_frame(conn, _WMS_AVAILABLE)
        diffs = compare_stock(read, wms, tolerance)
        copy_frame(
            conn,
            "_stock_diff",
            "sku text, warehouse_id text, platform text, wms_qty integer, platform_qty integer, "
            "diff integer, wms_on_hand integer, wms_locked integer, platform_withheld integer, "
            "platform_paused boolean, tolerance integer",
            diffs,
        )
        platforms = sorted(set(read["channel"]))
        conn.execute(_REPLACE, {"platforms": platforms})
        conn.execute(_UPSERT, {"now": now})
    report.compared = {c: int(n) for c, n in read.groupby("channel").size().items()}
    counts = diffs.groupby("platform").size()
    report.differences = {c: int(counts.get(c, 0)) for c in platforms}
    if len(diffs):
        report.examples = diffs.reindex(diffs["diff"].abs().sort_values(ascending=False).index)[
            ["platform", "sku", "platform_qty", "wms_qty", "diff"]
        ].head(10)
    return report
