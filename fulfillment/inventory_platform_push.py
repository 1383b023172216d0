"""Locks and pause-sale pushed to every platform's stock API, and the platforms' stock read back.

What each platform should show per SKU: `withheld` = the units OrderPulse's locks hold
(`ops.inventory_locks`, state `locked`, summed over warehouses: the seeds' freeze instruction)
and `paused` = the SKU is on `ops.pause_sale` (sale stopped everywhere at once; a restock takes
it off the list, and the lift is pushed the same way).

`ops.platform_stock` keeps, per platform and SKU, what its stock API last showed (`read_at`)
and what OrderPulse last pushed (`pushed_*`): a push sends only what differs from that (the
last push, else the last read), so a quiet run makes no call at all. Only SKUs the platform
lists are pushed (a platform never read before is read first). Writes are absolute (the
frozen units become N), so a push repeated after a failure changes nothing twice.

The platform clients come from `connectors.platform_stock` (wired in `orchestration`; this
package never imports the outside world's code): anything with the `PlatformStockApi` methods.
A platform that fails (its calls already retried by the client) is reported and skipped; the
others go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd
import psycopg

from fulfillment.frames import copy_frame, read_frame
from fulfillment.ops_schema import ensure_ops_tables

PUSH_ADVISORY = "orderpulse.platform_stock"


class PlatformStockApi(Protocol):
    """One platform's stock API (connectors.platform_stock.PlatformStockClient)."""

    channel: str

    def read_stock(self) -> list[dict[str, Any]]:
        """[{"sku", "sellable", "withheld", "paused"}] for every SKU the platform lists."""
        ...

    def set_withheld(self, items: Mapping[str, int]) -> int: ...

    def set_paused(self, skus: Sequence[str], paused: bool) -> int: ...


# per SKU: the units the locks hold and whether sale is paused
_DESIRED = """
with skus as (
    select distinct sku from staging.stg_merchant_systems__wms_stock where sku is not null
    union
    select sku from ops.inventory_locks where state = 'locked' and sku is not null
    union
    select sku from ops.pause_sale
),
locked as (
    select sku, sum(qty)::integer as withheld
    from ops.inventory_locks
    where state = 'locked'
    group by sku
)
select s.sku, coalesce(l.withheld, 0) as withheld, (p.sku is not null) as paused
from skus s
left join locked l using (sku)
left join ops.pause_sale p using (sku)
"""

_KNOWN = """
select sku, withheld, paused, pushed_withheld, pushed_paused
from ops.platform_stock
where channel = %(channel)s and read_at is not null
"""

_SAVE_READ = """
insert into ops.platform_stock as p (channel, sku, sellable, withheld, paused, read_at)
select channel, sku, sellable, withheld, paused, %(now)s::timestamptz from _platform_read
on conflict (channel, sku) do update set
    sellable = excluded.sellable, withheld = excluded.withheld, paused = excluded.paused,
    read_at = excluded.read_at
"""

_SAVE_PUSH = """
update ops.platform_stock p
set pushed_withheld = coalesce(x.withheld, p.pushed_withheld),
    pushed_paused = coalesce(x.paused, p.pushed_paused),
    pushed_at = %(now)s
from _platform_pushed x
where p.channel = x.channel and p.sku = x.sku
"""

READ_COLUMNS = "channel text, sku text, sellable integer, withheld integer, paused boolean"


@dataclass
class PushReport:
    frozen: dict[str, int] = field(default_factory=dict)  # channel -> SKUs whose freeze changed
    paused: dict[str, list[str]] = field(default_factory=dict)
    lifted: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # write calls (a first read: one)
    errors: dict[str, str] = field(default_factory=dict)


def platform_frame(channel: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A platform's stock rows as a frame: channel, sku, sellable, withheld, paused."""
    frame = pd.DataFrame(rows, columns=["sku", "sellable", "withheld", "paused"])
    frame.insert(0, "channel", channel)
    return frame


def save_read(conn: psycopg.Connection, frame: pd.DataFrame, now: datetime) -> None:
    """Record what the platforms showed (`platform_frame` rows of one or more channels)."""
    copy_frame(conn, "_platform_read", READ_COLUMNS, frame)
    conn.execute(_SAVE_READ, {"now": now})


def plan_push(desired: pd.DataFrame, known: pd.DataFrame) -> tuple[dict[str, int], list, list]:
    """(freezes {sku: units}, SKUs to pause, SKUs to lift) for one platform.

    `desired`: sku, withheld, paused. `known`: the platform's listed SKUs with what it showed
    (withheld, paused) and what was last pushed (pushed_withheld, pushed_paused, or null)."""
    if known.empty:
        return {}, [], []
    df = known.merge(desired, on="sku", how="left", suffixes=("_shown", ""))
    df["withheld"] = df["withheld"].fillna(0).astype(int)
    df["paused"] = df["paused"].astype("boolean").fillna(False).astype(bool)
    # what the platform holds now, as far as OrderPulse knows: its last push, else its read
    held = df["pushed_withheld"].where(df["pushed_withheld"].notna(), df["withheld_shown"])
    shown_paused = df["pushed_paused"].where(df["pushed_paused"].notna(), df["paused_shown"])
    shown_paused = shown_paused.astype("boolean").fillna(False).astype(bool)
    freeze = df[pd.to_numeric(held).fillna(-1).astype(int) != df["withheld"]]
    pause = df.loc[df["paused"] & ~shown_paused, "sku"]
    lift = df.loc[~df["paused"] & shown_paused, "sku"]
    return (
        dict(zip(freeze["sku"], freeze["withheld"].astype(int), strict=True)),
        sorted(pause),
        sorted(lift),
    )


def push_platform_stock(
    conn: psycopg.Connection, apis: Mapping[str, PlatformStockApi], now: datetime
) -> PushReport:
    """Push every platform's changed freezes and pauses/lifts; one platform at a time."""
    ensure_ops_tables(conn)
    report = PushReport()
    for channel, api in apis.items():
        with conn.transaction():
            # one push per platform at a time: two would both see the same old state
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [PUSH_ADVISORY])
            try:
                report.calls[channel] = _push_one(conn, channel, api, now, report)
            except psycopg.Error:
                raise
            except Exception as err:  # the client already retried: report it, go on
                report.errors[channel] = f"{type(err).__name__}: {err}"
    return report


def _push_one(
    conn: psycopg.Connection, channel: str, api: PlatformStockApi, now: datetime, report: PushReport
) -> int:
    calls = 0
    known = read_frame(conn, _KNOWN, {"channel": channel})
    if known.empty:  # never read: learn what it lists first
        save_read(conn, platform_frame(channel, api.read_stock()), now)
        calls += 1
        known = read_frame(conn, _KNOWN, {"channel": channel})
    desired = read_frame(conn, _DESIRED)
    freezes, pause, lift = plan_push(desired, known)
    pushed = []
    if freezes:
        calls += api.set_withheld(freezes)
        pushed.append(pd.DataFrame({"sku": list(freezes), "withheld": list(freezes.values())}))
    if pause:
        calls += api.set_paused(pause, True)
        pushed.append(pd.DataFrame({"sku": pause, "paused": True}))
    if lift:
        calls += api.set_paused(lift, False)
        pushed.append(pd.DataFrame({"sku": lift, "paused": False}))
    if pushed:
        frame = pd.concat(pushed, ignore_index=True).groupby("sku", as_index=False).first()
        frame["withheld"] = frame.reindex(columns=["withheld"])["withheld"].astype("Int64")
        frame.insert(0, "channel", channel)
        copy_frame(
            conn,
            "_platform_pushed",
            "channel text, sku text, withheld integer, paused boolean",
            frame,
        )
        conn.execute(_SAVE_PUSH, {"now": now})
    report.frozen[channel] = len(freezes)
    report.paused[channel] = pause
    report.lifted[channel] = lift
    return calls
