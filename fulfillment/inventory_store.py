"""Inventory locks and the pause-sale list against the warehouse: read the open order lines,
the WMS stock and the current locks, run `inventory_locks.plan_locks`, write
`ops.inventory_locks`; then `ops.pause_sale` from the stock left after the locks.

Reads intermediate.int_orders, int_order_items, int_order_fulfillment_status and
int_order_fulfillment_events (the WMS's warehouse of an order), staging's WMS stock, and the
ops tables of the earlier decisions (routing's warehouse, the review queue's holds).

An order is open (holds stock) when it is paid, not cancelled, not refunded, not shipped (by
the platform or the warehouse/carrier events), and not held by a review that expired without a
release (`ops.review_queue.hold_until` < now, no decision) or that intercepted it. A lock of an
order that stopped being open is released with the reason (cancelled, shipped, refunded,
hold_expired, intercepted; `line_removed` when the order is open but no longer has the line).

Set-based: one query per input, COPY of the plan into a temp table, one upsert + one release
statement, all in one transaction under an advisory lock: two concurrent runs take turns, the
second sees the first's locks, so no unit is ever locked twice. A re-run with the same inputs
changes nothing (rows are only touched when their quantity, state or warehouse changes).
A pass reads afresh only the orders changed since the last pass began, and plans them with
the other open lines as their locks hold them (`_TOUCHED` below); every order at least hourly,
on the first pass and when the lock settings change (`_why_whole`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import psycopg

from fulfillment.frames import (
    allow_whole_reads,
    copy_frame,
    read_beside,
    read_frame,
    read_frame_by_copy,
    wrote_in_transaction,
)
from fulfillment.inventory_locks import (
    ACTIVE_STATES,
    KEY,
    LOCKED,
    OVERSOLD,
    PLAN_COLUMNS,
    RELEASED,
    changed_locks,
    pause_sale_list,
    plan_locks,
    plan_releases,
)
from fulfillment.inventory_rules import InventoryRules
from fulfillment.ops_schema import ensure_ops_tables

# statuses past the warehouse door: the units left, the lock is done
SHIPPED_STATUSES = ["awaiting_pickup", "pickup_failed", "in_transit", "delivered"]
# review decisions that let a held order go on / that stop it
RELEASE_DECISIONS = ["release", "released", "approve", "approved", "pass"]
INTERCEPT_DECISIONS = ["intercept", "intercepted", "reject", "rejected", "cancel"]

# every paid order that is open, or that some active lock still names (a hash join with the
# locked orders, not an `exists` per order: that probed the locks' index once for each of
# 746,000 paid orders at 1,000,000, 1.5 s). {orders}: every order, or the touched ones.
_ORDERS = """
insert into _inv_orders (channel, platform_order_no, paid_at, release_reason)
with locked as (
    select distinct l.channel, l.platform_order_no
    from {locks}
    where l.state in ('locked', 'oversold')
),
candidates as (
    select o.channel, o.platform_order_no, o.paid_at,
           coalesce(o.has_cancel, false) as cancelled,
           coalesce(o.has_refund, false) as refunded,
           coalesce(o.has_ship, false)
               or coalesce(f.fulfillment_status = any(%(shipped)s), false) as shipped,
           r.hold_until, lower(r.decision) as decision
    from {orders}
    left join locked k using (channel, platform_order_no)
    left join intermediate.int_order_fulfillment_status f using (channel, platform_order_no)
    left join ops.review_queue r using (channel, platform_order_no)
    where o.paid_at is not null and o.paid_at <= %(now)s
        and not (o.channel = any(%(exclude)s))
        and (
            (not coalesce(o.has_cancel, false) and not coalesce(o.has_refund, false)
             and not coalesce(o.has_ship, false)
             and not coalesce(f.fulfillment_status = any(%(shipped)s), false))
            or k.channel is not null
        )
)
select channel, platform_order_no, paid_at,
       case
           when cancelled then 'cancelled'
           when shipped then 'shipped'
           when refunded then 'refunded'
           when decision = any(%(intercept)s) then 'intercepted'
           when hold_until < %(now)s and (decision is null or decision = '') then 'hold_expired'
       end as release_reason
from candidates
"""

_LINES = """
with open_orders as (
    select channel, platform_order_no, paid_at from _inv_orders where release_reason is null
),
wms as (
    select distinct on (e.channel, e.platform_order_no)
           e.channel, e.platform_order_no, e.warehouse_id
    from intermediate.int_order_fulfillment_events e
    join open_orders using (channel, platform_order_no)
    where e.origin = 'wms' and e.warehouse_id is not null
    order by e.channel, e.platform_order_no, e.event_at desc
),
decided as (
    select d.channel, d.platform_order_no, d.decision, d.warehouse_id, d.inputs
    from ops.routing_decisions d
    join open_orders using (channel, platform_order_no)
    where d.part = 0
),
parts as (
    select d.channel, d.platform_order_no, s.sku, p ->> 'warehouse_id' as warehouse_id
    from decided d
    cross join lateral jsonb_array_elements(
        case when jsonb_typeof(d.inputs -> 'parts') = 'array' then d.inputs -> 'parts'
             else '[]'::jsonb end) p
    cross join lateral jsonb_array_elements_text(
        case when jsonb_typeof(p -> 'skus') = 'array' then p -> 'skus'
             else '[]'::jsonb end) s(sku)
    where d.decision = 'split'
)
select i.channel, i.platform_order_no, i.sku, i.qty, o.paid_at,
       wms.warehouse_id as wms_warehouse,
       coalesce(parts.warehouse_id,
                case when decided.decision = 'ship' then decided.warehouse_id end)
           as routed_warehouse
from intermediate.int_order_items i
join open_orders o using (channel, platform_order_no)
left join wms using (channel, platform_order_no)
left join decided using (channel, platform_order_no)
left join (select distinct on (channel, platform_order_no, sku) * from parts) parts
    using (channel, platform_order_no, sku)
where i.sku is not null and i.qty > 0
"""

# the WMS's latest row per warehouse and SKU
_STOCK = """
select distinct on (warehouse_id, sku) warehouse_id, sku, on_hand
from staging.stg_merchant_systems__wms_stock
where warehouse_id is not null and sku is not null
order by warehouse_id, sku, last_sync_at desc nulls last
"""

_EXISTING = """
select channel, platform_order_no, sku, warehouse_id, qty, state, basis, paid_at
from ops.inventory_locks
where state in ('locked', 'oversold')
"""

# the open lines and the active locks are read by COPY (157,000 rows each after a 1 M-order
# cycle: 4.2 -> 2.6 s and 1.9 -> 0.6 s); their text columns stay text
_LINES_TEXT = ("channel", "platform_order_no", "sku", "wms_warehouse", "routed_warehouse")
_EXISTING_TEXT = ("channel", "platform_order_no", "sku", "warehouse_id", "state", "basis")


def _read_existing(conn: psycopg.Connection) -> pd.DataFrame:
    return read_frame_by_copy(conn, _EXISTING, text=_EXISTING_TEXT, times=("paid_at",))


# -- passes that read only what changed ------------------------------------------------------
# A pass plans every open line (the allocation is first paid, first served over all of them),
# but reads afresh only the orders touched since the last pass began: their row, lines,
# fulfilment status or WMS events written by a transaction the last pass's snapshot did not
# see (the dbt models' `_written_xid` index), their routing decision or review rewritten
# since (xmin), or their review hold expired in between. An untouched order's lines are its
# active locks: every open line has one after each pass, and its warehouse's basis says where
# it came from (the WMS's allocation, routing's choice; a held or provisional lock is held
# again). At 1,000,000 orders (2026-12-07, idle) a pass of every order read 142,667 open
# orders of 1,005,000 and their 253,005 lines in 4.7-7.1 s, a pass with nothing touched took
# 1.4-1.9 s, and the stock-lock step of a 10,000-order cycle 7.2-8.0 → 2.9 s (bench/README.md,
# the incremental cycle).
_INPUTS = (
    "int_orders",
    "int_order_items",
    "int_order_fulfillment_status",
    "int_order_fulfillment_events",
)
# written by a transaction the snapshot %(snapshot)s did not see
_UNSEEN = (
    "_written_xid >= pg_snapshot_xmin(%(snapshot)s::pg_snapshot)::text::bigint "
    "and not pg_visible_in_snapshot(_written_xid::text::xid8, %(snapshot)s::pg_snapshot)"
)
_TOUCHED = (
    "insert into _inv_touched (channel, platform_order_no)\n"
    + "\nunion\n".join(
        f"select channel, platform_order_no from intermediate.{name} where {_UNSEEN}"
        for name in _INPUTS
    )
    + """
union
select channel, platform_order_no from ops.routing_decisions
where xmin::text::bigint >= %(xmin32)s
union
select channel, platform_order_no from ops.review_queue
where xmin::text::bigint >= %(xmin32)s
    or (hold_until >= %(last_now)s and hold_until < %(now)s)
"""
)
# the earliest payment time after `now` (an order paid "in the future" opens then)
_RECHECK_ALL = """
select min(paid_at) from intermediate.int_orders
where paid_at > %(now)s and not (channel = any(%(exclude)s))
"""
_RECHECK_TOUCHED = """
select min(o.paid_at)
from _inv_touched t
join intermediate.int_orders o using (channel, platform_order_no)
where o.paid_at > %(now)s and not (o.channel = any(%(exclude)s))
"""
_PASS_WRITE = """
insert into ops.inventory_lock_passes (pass, snapshot, ran_at, full_at, settings, recheck_at)
values (true, %(snapshot)s, %(now)s, %(full_at)s, %(settings)s, %(recheck_at)s)
on conflict (pass) do update set
    snapshot = excluded.snapshot, ran_at = excluded.ran_at, full_at = excluded.full_at,
    settings = excluded.settings, recheck_at = excluded.recheck_at
"""
# more touched orders than this: reading them one by one costs more than reading every order
FULL_FROM_TOUCHED = 50_000
# a pass reads every order at least this often, whatever it was told changed
FULL_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class _LastPass:
    snapshot: str
    ran_at: datetime
    full_at: datetime
    settings: str
    recheck_at: datetime | None


def _settings(rules: InventoryRules) -> str:
    """What decides which orders lock besides the data: a change reads every order again."""
    return json.dumps({"exclude_channels": sorted(rules.locks.exclude_channels)})


def _has_written_xid(conn: psycopg.Connection) -> bool:
    """Every input carries dbt's `_written_xid` (tables built by another tool may not)."""
    (count,) = conn.execute(
        "select count(distinct table_name) from information_schema.columns "
        "where table_schema = 'intermediate' and table_name = any(%s) "
        "and column_name = '_written_xid'",
        [list(_INPUTS)],
    ).fetchone()
    return count == len(_INPUTS)


def _why_whole(
    conn: psycopg.Connection, last: _LastPass | None, settings: str, snapshot: str, now: datetime
) -> str | None:
    """Why this pass must read every order, or None when the touched ones will do."""
    if last is None:
        return "first pass"
    if last.settings != settings:
        return "lock settings changed"
    if now < last.ran_at:
        return "clock went back"
    if now - last.full_at >= FULL_EVERY:
        return "hourly whole read"
    if last.recheck_at is not None and last.recheck_at <= now:
        return "an order paid in the future is due"
    # xmin is 32 bits: compare within one epoch of the 64-bit transaction counter
    (same_epoch,) = conn.execute(
        "select pg_snapshot_xmin(%s::pg_snapshot)::text::bigint >> 32 "
        "= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint >> 32",
        [last.snapshot, snapshot],
    ).fetchone()
    if not same_epoch:
        return "transaction counter wrapped"
    if not _has_written_xid(conn):
        return "inputs without _written_xid"
    return None


def _xmin32(conn: psycopg.Connection, snapshot: str) -> int:
    """The snapshot's oldest running transaction, as the 32-bit xid a row's xmin holds."""
    (xmin,) = conn.execute(
        "select pg_snapshot_xmin(%s::pg_snapshot)::text::bigint", [snapshot]
    ).fetchone()
    return int(xmin) % 2**32


def _lines_from_locks(existing: pd.DataFrame, touched: pd.DataFrame) -> pd.DataFrame:
    """The open lines of the untouched orders, as their active locks hold them: the lock's
    warehouse as the WMS's or routing's when that is its basis (a held or provisional lock
    is found again through `existing`)."""
    active = existing[existing["state"].isin(ACTIVE_STATES)]
    active = active.sort_values("state").drop_duplicates(KEY)  # 'locked' before 'oversold'
    keep = active.merge(
        touched.drop_duplicates(),
        on=["channel", "platform_order_no"],
        how="left",
        indicator=True,
    )
    keep = keep[keep["_merge"] == "left_only"]
    lines = keep[[*KEY, "qty", "paid_at"]].copy()
    lines["wms_warehouse"] = keep["warehouse_id"].where(keep["basis"] == "wms")
    lines["routed_warehouse"] = keep["warehouse_id"].where(keep["basis"] == "routing")
    return lines.reset_index(drop=True)


# a lock whose line now locks at another warehouse moves (the plan's row replaces it)
_MOVE = """
delete from ops.inventory_locks l
using _inv_plan p
where l.channel = p.channel and l.platform_order_no = p.platform_order_no and l.sku = p.sku
    and l.warehouse_id <> p.warehouse_id
"""

_UPSERT = """
insert into ops.inventory_locks as l
    (channel, platform_order_no, sku, warehouse_id, qty, state, basis, paid_at, locked_at,
     updated_at)
select channel, platform_order_no, sku, warehouse_id, qty, state, basis, paid_at,
       case when state = 'locked' then %(now)s::timestamptz end, %(now)s::timestamptz
from _inv_plan
on conflict (channel, platform_order_no, sku, warehouse_id) do update set
    qty = excluded.qty,
    state = excluded.state,
    basis = excluded.basis,
    paid_at = excluded.paid_at,
    locked_at = case when excluded.state = 'locked' and l.state is distinct from 'locked'
                     then excluded.updated_at
                     when excluded.state = 'locked' then l.locked_at end,
    released_at = null,
    release_reason = null,
    updated_at = excluded.updated_at
where (l.qty, l.state, l.basis, l.paid_at)
    is distinct from (excluded.qty, excluded.state, excluded.basis, excluded.paid_at)
"""

_RELEASE = """
update ops.inventory_locks l
set state = 'released', released_at = %(now)s, release_reason = r.release_reason,
    updated_at = %(now)s
from _inv_release r
where l.channel = r.channel and l.platform_order_no = r.platform_order_no and l.sku = r.sku
    and l.warehouse_id = r.warehouse_id and l.state in ('locked', 'oversold')
"""

# restocked SKUs come off the list (the table is the current list)
_PAUSE_LIFT = """
delete from ops.pause_sale p
where not exists (select 1 from _pause n where n.sku = p.sku)
"""

_PAUSE_WRITE = """
insert into ops.pause_sale as p (sku, reason, since, sellable, threshold, updated_at)
select sku, reason, %(now)s::timestamptz, sellable, threshold, %(now)s::timestamptz from _pause
on conflict (sku) do update set
    reason = excluded.reason, sellable = excluded.sellable, threshold = excluded.threshold,
    updated_at = excluded.updated_at
where (p.reason, p.sellable, p.threshold)
    is distinct from (excluded.reason, excluded.sellable, excluded.threshold)
"""

LOCK_ADVISORY = "orderpulse.inventory_locks"


@dataclass
class LockRunReport:
    open_lines: int = 0
    locked: int = 0
    oversold: int = 0
    oversold_orders: int = 0
    written: int = 0
    released: dict[str, int] = field(default_factory=dict)
    by_basis: dict[str, int] = field(default_factory=dict)
    examples: pd.DataFrame | None = None
    # why this pass read every order (None: only the orders touched since the last pass)
    whole_because: str | None = None
    touched_orders: int = 0


@dataclass
class PauseRunReport:
    paused: int = 0
    added: list[str] = field(default_factory=list)
    lifted: list[str] = field(default_factory=list)
    examples: pd.DataFrame | None = None


def sync_inventory_locks(
    conn: psycopg.Connection, rules: InventoryRules, now: datetime, whole: bool = False
) -> LockRunReport:
    """Lock every open order line, flag the oversold, release what closed: one transaction.
    Reads afresh only the orders touched since the last pass, unless `whole` or `_why_whole`
    says every order."""
    ensure_ops_tables(conn)
    report = LockRunReport()
    settings = _settings(rules)
    with conn.transaction():
        # one lock run at a time: two would hand out the same units twice
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [LOCK_ADVISORY])
        allow_whole_reads(conn)  # every open order and its lines
        # taken before any read (a statement of its own, so each read sees at least as much):
        # a row committed after it is read again by the next pass, never missed
        (snapshot,) = conn.execute("select pg_current_snapshot()::text").fetchone()
        row = conn.execute(
            "select snapshot, ran_at, full_at, settings, recheck_at from ops.inventory_lock_passes"
        ).fetchone()
        last = _LastPass(*row) if row else None
        # the active locks, read beside this transaction while it finds the open lines (only
        # a lock pass writes them, and this one holds the lock): 0.1-0.4 s of a pass at
        # 1,000,000 orders, idle (routing's two whole reads beside gained nothing measurable)
        existing_read = read_beside(conn, _read_existing, inline=wrote_in_transaction(conn))
        report.whole_because = "asked" if whole else _why_whole(conn, last, settings, snapshot, now)
        params = {
            "now": now,
            "exclude": list(rules.locks.exclude_channels),
            "shipped": SHIPPED_STATUSES,
            "intercept": INTERCEPT_DECISIONS,
        }
        conn.execute("drop table if exists _inv_orders")
        conn.execute(
            "create temp table _inv_orders (channel text, platform_order_no text, "
            "paid_at timestamptz, release_reason text) on commit drop"
        )
        touched = None
        if report.whole_because is None:
            assert last is not None
            conn.execute("drop table if exists _inv_touched")
            conn.execute(
                "create temp table _inv_touched (channel text, platform_order_no text) "
                "on commit drop"
            )
            with conn.cursor() as cur:
                cur.execute(
                    _TOUCHED,
                    {
                        "snapshot": last.snapshot,
                        "xmin32": _xmin32(conn, last.snapshot),
                        "last_now": last.ran_at,
                        "now": now,
                    },
                )
                report.touched_orders = max(cur.rowcount, 0)
            if report.touched_orders > FULL_FROM_TOUCHED:
                report.whole_because = f"{report.touched_orders:,} orders touched"
            else:
                conn.execute("analyze _inv_touched")  # a temp table has no statistics
                touched = read_frame(conn, "select channel, platform_order_no from _inv_touched")
        if touched is None:
            conn.execute(
                _ORDERS.format(orders="intermediate.int_orders o", locks="ops.inventory_locks l"),
                params,
            )
            (recheck_at,) = conn.execute(_RECHECK_ALL, params).fetchone()
            full_at = now
        else:
            conn.execute(
                _ORDERS.format(
                    orders="_inv_touched t join intermediate.int_orders o "
                    "using (channel, platform_order_no)",
                    locks="_inv_touched t join ops.inventory_locks l "
                    "using (channel, platform_order_no)",
                ),
                params,
            )
            (recheck_at,) = conn.execute(_RECHECK_TOUCHED, params).fetchone()
            assert last is not None
            if last.recheck_at is not None:
                recheck_at = min(filter(None, (recheck_at, last.recheck_at)))
            full_at = last.full_at
        lines = read_frame_by_copy(conn, _LINES, text=_LINES_TEXT, times=("paid_at",))
        stock = read_frame(conn, _STOCK)
        existing = existing_read.result()
        if touched is not None:
            lines = pd.concat([lines, _lines_from_locks(existing, touched)], ignore_index=True)
        reasons = read_frame(conn, "select * from _inv_orders where release_reason is not null")
        plan = plan_locks(lines, stock, existing)
        releases = plan_releases(existing, plan, reasons)
        # only the lines whose lock changes go back (the upsert would skip the rest)
        copy_frame(
            conn,
            "_inv_plan",
            "channel text, platform_order_no text, sku text, warehouse_id text, qty integer, "
            "state text, basis text, paid_at timestamptz",
            changed_locks(plan, existing),
        )
        copy_frame(
            conn,
            "_inv_release",
            "channel text, platform_order_no text, sku text, warehouse_id text, "
            "release_reason text",
            releases,
        )
        with conn.cursor() as cur:
            cur.execute(_MOVE)
            cur.execute(_UPSERT, {"now": now})
            report.written = max(cur.rowcount, 0)
            cur.execute(_RELEASE, {"now": now})
        conn.execute(
            _PASS_WRITE,
            {
                "snapshot": snapshot,
                "now": now,
                "full_at": full_at,
                "settings": settings,
                "recheck_at": recheck_at,
            },
        )
    report.open_lines = len(plan)
    states = plan["state"].value_counts()
    report.locked = int(states.get(LOCKED, 0))
    report.oversold = int(states.get(OVERSOLD, 0))
    report.oversold_orders = int(
        plan.loc[plan["state"] == OVERSOLD, ["channel", "platform_order_no"]]
        .drop_duplicates()
        .shape[0]
    )
    report.by_basis = {k: int(v) for k, v in plan["basis"].value_counts().sort_index().items()}
    report.released = {
        k: int(v) for k, v in releases["release_reason"].value_counts().sort_index().items()
    }
    if len(plan):
        report.examples = (
            plan.sort_values("state", ascending=False)
            .groupby("state", sort=False)
            .head(3)[list(PLAN_COLUMNS[:6])]
            .reset_index(drop=True)
        )
    return report


def sync_pause_sale(
    conn: psycopg.Connection, rules: InventoryRules, now: datetime
) -> PauseRunReport:
    """Put every SKU under its threshold on `ops.pause_sale`; take restocked SKUs off."""
    ensure_ops_tables(conn)
    report = PauseRunReport()
    with conn.transaction():
        # reads the locks: wait for a lock run in progress
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [LOCK_ADVISORY])
        stock = read_frame(conn, _STOCK)
        locks = _read_existing(conn)
        locks["qty"] = pd.to_numeric(locks["qty"])
        before = set(read_frame(conn, "select sku from ops.pause_sale")["sku"])
        paused = pause_sale_list(
            stock, locks, rules.pause_sale.default_threshold, rules.pause_sale.sku_thresholds
        )
        copy_frame(
            conn, "_pause", "sku text, reason text, sellable integer, threshold integer", paused
        )
        conn.execute(_PAUSE_LIFT)
        conn.execute(_PAUSE_WRITE, {"now": now})
    now_paused = set(paused["sku"])
    report.paused = len(now_paused)
    report.added = sorted(now_paused - before)
    report.lifted = sorted(before - now_paused)
    if len(paused):
        report.examples = paused.head(5).reset_index(drop=True)
    return report


__all__ = [
    "ACTIVE_STATES",
    "RELEASED",
    "LockRunReport",
    "PauseRunReport",
    "sync_inventory_locks",
    "sync_pause_sale",
]
