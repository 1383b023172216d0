"""Routing against the warehouse: read the decision inputs, run `routing.route`, write
`ops.routing_decisions` and the circuit breaker's alert rows.

Reads only what sits upstream of `ops` (intermediate.int_orders_awaiting_allocation, the order
lines, the merchant systems' staging models, raw.address_geo) plus the ops tables routing
itself owns, so the asset graph stays one-way. Set-based: one query per input, one COPY of the
decisions into a temp table, one delete + insert.

Idempotent: each decision stores `input_hash` (the order's content hash, its placed address and
the rule set's fingerprint). An order whose hash is unchanged keeps its decision; a changed
order, or any order after a rule change, is decided again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import psycopg

from fulfillment.frames import allow_whole_reads, read_frame, read_frame_by_copy
from fulfillment.merged_routing import fold_groups, follow_allocated_mates, unfold_decisions
from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.promise import lane_hours_for
from fulfillment.routing import route
from fulfillment.routing_rules import RoutingRules, resolve_hot_skus
from fulfillment.routing_simulation import SimulationReport, simulate

_CANDIDATES = """
select o.channel, o.platform_order_no, o.province, o.city, o.district, o.goods_value::float8
           as goods_value, o.freight::float8 as freight, o.paid_at, g.latitude, g.longitude,
       md5(concat_ws('|', o.content_hash, g.address_hash, %(fingerprint)s::text)) as input_hash
from intermediate.int_orders_awaiting_allocation o
left join raw.address_geo g using (channel, platform_order_no)
left join ops.routing_decisions d
    on d.channel = o.channel and d.platform_order_no = o.platform_order_no and d.part = 0
where d.input_hash is distinct from
      md5(concat_ws('|', o.content_hash, g.address_hash, %(fingerprint)s::text))
    -- held for review (no release yet) or intercepted: a person decides first
    and not exists (
        select 1 from ops.review_queue q
        where q.channel = o.channel and q.platform_order_no = o.platform_order_no
            and coalesce(lower(q.decision), '') not in
                ('release', 'released', 'approve', 'approved', 'pass'))
"""

# every member of a merge group that has an order in this run
_MERGE_GROUPS = """
select m.group_id, m.channel, m.platform_order_no
from ops.merge_candidates m
where m.group_id in (select c.group_id from ops.merge_candidates c
                     join _routing_orders o using (channel, platform_order_no))
"""
# this run's orders whose group-mate was allocated by an earlier run, earliest mate first
_ALLOCATED_MATES = """
select c.channel, c.platform_order_no, m.channel as mate_channel,
       m.platform_order_no as mate_order_no, c.group_id, d.warehouse_id, d.carrier,
       d.promise_days, d.promised_delivery_at
from ops.merge_candidates c
join _routing_orders o using (channel, platform_order_no)
join ops.merge_candidates m
    on m.group_id = c.group_id
    and (m.channel, m.platform_order_no) <> (c.channel, c.platform_order_no)
join ops.routing_decisions d
    on d.channel = m.channel and d.platform_order_no = m.platform_order_no and d.part = 0
where d.decision = 'ship'
    and not exists (select 1 from _routing_orders x
                    where x.channel = m.channel and x.platform_order_no = m.platform_order_no)
order by c.channel, c.platform_order_no, d.decided_at, m.channel, m.platform_order_no
"""

_LINES = """
select i.channel, i.platform_order_no, i.sku, i.qty
from intermediate.int_order_items i
join _routing_orders o using (channel, platform_order_no)
where i.sku is not null and i.qty > 0
"""

# Unlocked stock per warehouse and SKU. Once OrderPulse's lock step has run, its locks are
# the reservations: on hand less the locks other orders hold (the WMS reserves the same paid
# orders, so subtracting both would count them twice). Before that, the WMS's `available`.
_STOCK = """
with latest as (
    select distinct on (warehouse_id, sku) warehouse_id, sku, on_hand, available,
           safety_stock, last_sync_at
    from staging.stg_merchant_systems__wms_stock
    where warehouse_id is not null and sku is not null
    order by warehouse_id, sku, last_sync_at desc nulls last
),
locked as (
    select l.warehouse_id, l.sku, sum(l.qty) as qty
    from ops.inventory_locks l
    where l.state = 'locked'
        and not exists (select 1 from _routing_orders o
                        where o.channel = l.channel and o.platform_order_no = l.platform_order_no)
    group by l.warehouse_id, l.sku
),
basis as (
    select exists (select 1 from ops.inventory_locks) as locks_in_use
)
select latest.warehouse_id, latest.sku,
       case when basis.locks_in_use
            then greatest(coalesce(latest.on_hand, 0) - coalesce(locked.qty, 0), 0)
            else greatest(coalesce(latest.available, 0), 0)
       end as available,
       latest.safety_stock as safety_threshold
from latest
cross join basis
left join locked using (warehouse_id, sku)
"""

# last stock sync per warehouse, and how many of its latest shipments failed in a row: each
# warehouse's newest shipments walked down its covering index (`ics_latest_by_warehouse`) until
# the first that did not fail, not all of them numbered by a window (727,000 shipments sorted
# at 1,000,000 orders: 1.1 s of every routing pass). A run is counted up to RUN_COUNTED (the
# breaker trips at a handful).
RUN_COUNTED = 1000
_HEALTH = f"""
with sync as (
    select warehouse_id, max(last_sync_at) as last_stock_sync_at
    from staging.stg_merchant_systems__wms_stock
    where warehouse_id is not null
    group by warehouse_id
),
streak as (
    select sync.warehouse_id,
           coalesce(min(latest.recent) filter (where latest.delivered_or_moving),
                    count(latest.recent) + 1) - 1 as failures
    from sync
    left join lateral (
        select s.last_track_status is distinct from 'pickup_failed' as delivered_or_moving,
               row_number() over (order by s.shipped_at desc nulls last,
                                           s.tracking_no desc) as recent
        from intermediate.int_carrier_shipments s
        where s.warehouse_id = sync.warehouse_id
        order by s.shipped_at desc nulls last, s.tracking_no desc
        limit {RUN_COUNTED}
    ) latest on true
    group by sync.warehouse_id
)
select sync.warehouse_id, sync.last_stock_sync_at,
       coalesce(streak.failures, 0) as consecutive_shipping_failures
from sync
left join streak using (warehouse_id)
"""

# delivered shipments: the lanes' fulfillment times (the promise: config/routing.yaml quantile)
# (read by COPY: 319,000 rows at 1,000,000 orders, 4.9 -> 2.6 s)
_HISTORY = """
select s.warehouse_id, o.province, s.carrier, o.paid_at, s.delivered_at
from intermediate.int_carrier_shipments s
join intermediate.int_orders o using (channel, platform_order_no)
where s.delivered_at is not null and o.paid_at is not null
    and s.delivered_at > %(since)s
"""

# quantity sold per SKU over the hot-SKU window (what `resolve_hot_skus` sums): summed here,
# not fetched line by line (1.67 M lines into pandas took 7.7 s of a routing run at 1 M orders)
_LINE_HISTORY = """
select i.sku, sum(i.qty) as qty, max(o.paid_at) as paid_at
from intermediate.int_order_items i
join intermediate.int_orders o using (channel, platform_order_no)
where o.paid_at > %(since)s and o.paid_at <= %(until)s and i.sku is not null
group by i.sku
"""

# orders already allocated today per warehouse (the capacity they use), other than these
_CAPACITY_USED = """
select warehouse_id, count(*) as used
from ops.routing_decisions d
where decision in ('ship', 'split') and part = 0
    and decided_at >= date_trunc('day', now() at time zone 'Asia/Shanghai')
                      at time zone 'Asia/Shanghai'
    and not exists (select 1 from _routing_orders o
                    where o.channel = d.channel and o.platform_order_no = d.platform_order_no)
group by warehouse_id
"""

_WRITE = """
delete from ops.routing_decisions d
using _routing_decisions n
where d.channel = n.channel and d.platform_order_no = n.platform_order_no;
insert into ops.routing_decisions
    (channel, platform_order_no, part, decision, warehouse_id, carrier, rule, score, inputs,
     decided_at, promised_delivery_at, promise_days, config_version, input_hash)
select channel, platform_order_no, 0, decision, warehouse_id, carrier, rule, score,
       inputs::jsonb, decided_at, promised_delivery_at, promise_days, config_version,
       input_hash
from _routing_decisions;
"""

_STAGE_COLUMNS = (
    "channel",
    "platform_order_no",
    "decision",
    "warehouse_id",
    "carrier",
    "rule",
    "score",
    "inputs",
    "decided_at",
    "promised_delivery_at",
    "promise_days",
    "config_version",
    "input_hash",
)


@dataclass
class RoutingRunReport:
    candidates: int = 0
    decided: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    by_decision: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    merged: int = 0  # orders routed with their merge group (folded or following a mate)
    examples: pd.DataFrame | None = None


def _num(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _json(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class RoutingInputs:
    """Everything `routing.route` needs, read from the warehouse for one set of orders."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    stock: pd.DataFrame
    health: pd.DataFrame
    capacity_used: dict[str, int]
    hot_skus: frozenset[str] | None
    lanes: object | None

    def route_kwargs(self) -> dict:
        return {
            "capacity_used": self.capacity_used,
            "hot_skus": self.hot_skus,
            "lanes": self.lanes,
        }


def _load_inputs(
    conn: psycopg.Connection, rules: RoutingRules, now: datetime, orders: pd.DataFrame
) -> RoutingInputs:
    """Lines, stock, warehouse health, lanes, hot SKUs and used capacity for `orders` (inside
    the caller's transaction: the order keys go to a temp table)."""
    _num(orders, "goods_value", "freight", "latitude", "longitude")
    # `on commit drop` waits for the caller's commit when it holds a transaction
    conn.execute("drop table if exists _routing_orders, _routing_decisions")
    conn.execute(
        "create temp table _routing_orders (channel text, platform_order_no text, "
        "primary key (channel, platform_order_no)) on commit drop"
    )
    with conn.cursor() as cur, cur.copy("copy _routing_orders from stdin") as copy:
        for row in orders[["channel", "platform_order_no"]].itertuples(index=False):
            copy.write_row(row)
    since = now - timedelta(days=max(rules.hot_skus.window_days, rules.promise.history_days))
    history = read_frame_by_copy(
        conn,
        _HISTORY,
        {"since": since},
        text=("warehouse_id", "province", "carrier"),
        times=("paid_at", "delivered_at"),
    )
    used = read_frame(conn, _CAPACITY_USED)
    hot = None
    if rules.hot_skus.listed is None:
        window = {"since": now - timedelta(days=rules.hot_skus.window_days), "until": now}
        hot = resolve_hot_skus(rules, _num(read_frame(conn, _LINE_HISTORY, window), "qty"), now)
    return RoutingInputs(
        orders=orders,
        lines=_num(read_frame(conn, _LINES), "qty"),
        stock=_num(read_frame(conn, _STOCK), "available", "safety_threshold"),
        health=_num(read_frame(conn, _HEALTH), "consecutive_shipping_failures"),
        capacity_used=dict(zip(used["warehouse_id"], used["used"].astype(int), strict=True)),
        hot_skus=hot,
        lanes=lane_hours_for(history, rules, now) if len(history) else None,
    )


def decide_routing(
    conn: psycopg.Connection, rules: RoutingRules, now: datetime
) -> RoutingRunReport:
    """Decide every order awaiting allocation whose inputs changed since its last decision;
    write the decisions and the circuit breaker's alerts in one transaction."""
    ensure_ops_tables(conn)
    report = RoutingRunReport()
    with conn.transaction():
        # one routing run at a time: two would count the same capacity twice
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.routing'))")
        allow_whole_reads(conn)  # the lanes' deliveries and the hot SKUs' lines
        orders = read_frame(conn, _CANDIDATES, {"fingerprint": rules.fingerprint()})
        report.candidates = len(orders)
        if orders.empty:
            return report
        inputs = _load_inputs(conn, rules, now, orders)
        # a merge group's orders of this run route as one; later ones follow an allocated mate
        folded = fold_groups(inputs.orders, inputs.lines, read_frame(conn, _MERGE_GROUPS))
        result = route(
            folded.orders, folded.lines, inputs.stock, inputs.health, rules, now,
            **inputs.route_kwargs(),
        )  # fmt: skip
        decided = unfold_decisions(result.decisions, folded.members)
        decided = follow_allocated_mates(
            decided, read_frame(conn, _ALLOCATED_MATES), inputs.lines, inputs.stock, now
        )
        report.merged = len(folded.members) + int((decided["rule"] == "merge_group").sum())
        decisions = decided.merge(
            orders[["channel", "platform_order_no", "input_hash"]],
            on=["channel", "platform_order_no"],
        )
        _write(conn, decisions)
        report.alerts = _write_alerts(conn, result.alerts, now)
    report.decided = len(decisions)
    counts = decisions[["rule", "decision"]].astype(str)
    report.by_rule = {k: int(v) for k, v in counts["rule"].value_counts().sort_index().items()}
    report.by_decision = {
        k: int(v) for k, v in counts["decision"].value_counts().sort_index().items()
    }
    report.examples = (
        decisions.groupby("rule", sort=True, observed=True)
        .head(2)[["channel", "platform_order_no", "decision", "warehouse_id", "carrier", "rule"]]
        .reset_index(drop=True)
    )
    return report


_REPLAY = """
select o.channel, o.platform_order_no, o.province, o.city, o.district,
       o.goods_value::float8 as goods_value, o.freight::float8 as freight, o.paid_at,
       g.latitude, g.longitude
from intermediate.int_orders o
left join raw.address_geo g using (channel, platform_order_no)
where o.paid_at > %(since)s and o.paid_at <= %(now)s
"""


def simulate_rules(
    conn: psycopg.Connection,
    current: RoutingRules,
    proposed: RoutingRules,
    now: datetime,
    days: int = 7,
) -> SimulationReport:
    """Replay the orders paid in the last `days` through both rule sets; writes nothing (the
    transaction is rolled back)."""
    with conn.transaction(force_rollback=True):
        orders = read_frame(conn, _REPLAY, {"since": now - timedelta(days=days), "now": now})
        inputs = _load_inputs(conn, current, now, orders)
        # the hot SKUs of the current rules (a listed set in the proposal still wins)
        return simulate(
            inputs.orders, inputs.lines, inputs.stock, inputs.health, current, proposed, now,
            hot_skus=inputs.hot_skus, lanes=inputs.lanes, capacity_per_paid_day=True,
        )  # fmt: skip


def _write(conn: psycopg.Connection, decisions: pd.DataFrame) -> None:
    conn.execute(
        "create temp table _routing_decisions (channel text, platform_order_no text, "
        "decision text, warehouse_id text, carrier text, rule text, score float8, inputs text, "
        "decided_at timestamptz, promised_delivery_at timestamptz, promise_days float8, "
        "config_version text, input_hash text) on commit drop"
    )
    frame = decisions.reindex(columns=list(_STAGE_COLUMNS)).astype(object)
    frame["inputs"] = frame["inputs"].map(_json)
    frame = frame.where(pd.notna(frame), None)
    with conn.cursor() as cur:
        with cur.copy(f"copy _routing_decisions ({', '.join(_STAGE_COLUMNS)}) from stdin") as copy:
            for row in frame.itertuples(index=False):
                copy.write_row(row)
        cur.execute(_WRITE)


def _write_alerts(conn: psycopg.Connection, alerts: pd.DataFrame, now: datetime) -> int:
    """One `ops.alerts` row per tripped warehouse and cause per day (the dedup key)."""
    if alerts is None or alerts.empty:
        return 0
    written = 0
    day = now.strftime("%Y-%m-%d")
    for row in alerts.itertuples(index=False):
        key = f"routing_circuit_breaker:{row.warehouse_id}:{row.reason}:{day}"
        cur = conn.execute(
            "insert into ops.alerts (rule, severity, subject, facts, recipients, created_at, "
            "delivery, dedup_key) "
            "select 'routing_circuit_breaker', 'warning', %s, %s::jsonb, '{}', %s, 'pending', %s "
            "where not exists (select 1 from ops.alerts where dedup_key = %s)",
            [
                f"Warehouse {row.warehouse_id} dropped out of routing: {row.reason}",
                _json(row.facts),
                now,
                key,
                key,
            ],
        )
        written += cur.rowcount
    return written


_UNSENT = """
select channel, platform_order_no, warehouse_id, carrier, decided_at, promised_delivery_at
from ops.routing_decisions
where decision in ('ship', 'split') and part = 0 and wms_sent_at is null
    and warehouse_id is not null
order by decided_at, channel, platform_order_no
"""


def unsent_allocations(conn: psycopg.Connection) -> list[dict]:
    """Ship and split decisions the merchant's WMS has not been told about yet (a decision
    made again is sent again: the WMS replaces an allocation before pickup)."""
    return read_frame(conn, _UNSENT).to_dict("records")


def mark_sent(
    conn: psycopg.Connection, sent: list[dict], rejected: dict[str, str], at: datetime
) -> None:
    """Record what the WMS answered: `accepted`, or `rejected: <reason>` per order number."""
    rows = [
        (at, f"rejected: {rejected[a['platform_order_no']]}"
         if a["platform_order_no"] in rejected else "accepted",
         a["channel"], a["platform_order_no"])
        for a in sent
    ]  # fmt: skip
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "update ops.routing_decisions set wms_sent_at = %s, wms_status = %s "
            "where channel = %s and platform_order_no = %s and part = 0",
            rows,
        )
