"""Risk against the warehouse: read the assessment inputs, run `risk.assess`, write
`ops.risk_assessments` and, for the orders to hold, `ops.review_queue`.

Reads only what sits upstream of `ops`: the orders awaiting allocation
(`intermediate.int_orders_awaiting_allocation`, the paid orders not taken up by a warehouse yet)
with their fields from `intermediate.int_orders`, the orders around them (same buyer, IP,
receiver phone or address within `behaviour.window_hours`), the buyers' earlier order counts and the
storefront behaviour log (`intermediate.int_behaviour_events`, parsed once by dbt). Set-based: the
order keys go to a temp table by COPY, one query per input, the assessments back by COPY, one
upsert per table, all in one transaction under an advisory lock.

With a learned model (`fulfillment.risk_model`, trained by `fulfillment.risk_model_store`),
the same inputs give the model's features, and rules + model decide (`risk_model.combine`):
each assessment records `rule_score`, `model_version` and `model_probability` (null without a
model: the rules alone).

Idempotent: each assessment stores `input_hash` (the order's content hash, the rule set's
fingerprint, the model version, the score and the signals with their evidence). A re-run
writes nothing; a changed order, new evidence around it (a sixth order from its IP), a rule
change or a new model assesses it again. A held order
enters the review queue once (hold_until = now + `review.hold_hours`, decision null); a
re-assessment updates the score of an undecided entry and never touches a reviewer's decision
(release / intercept), its hold or its time. An order whose new score passes stays queued until
a person decides: the queue only grows by rules, people empty it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import psycopg

from fulfillment.frames import read_frame
from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.risk import assess, summarise
from fulfillment.risk_model import RiskModel, combine, order_features
from fulfillment.risk_rules import RiskRules

# the int_orders columns `risk.assess` reads (also the training set's, risk_model_store)
ORDER_COLUMNS = """
o.channel, o.platform_order_no, o.buyer_id, o.buyer_ip, o.receiver_name, o.receiver_phone,
o.receiver_address, o.province, o.country, o.goods_value::float8 as goods_value,
o.discount_amount::float8 as discount_amount, o.platform_discount::float8 as platform_discount,
o.shop_discount::float8 as shop_discount, o.currency, o.hs_code,
o.declared_value::float8 as declared_value, o.created_at, o.paid_at
"""

_CANDIDATES = f"""
select {ORDER_COLUMNS}, o.content_hash
from intermediate.int_orders_awaiting_allocation a
join intermediate.int_orders o using (channel, platform_order_no)
"""

# the buyer's orders before this one, over the whole history (a first order has none)
_PRIOR = """
select r.channel, r.platform_order_no, count(h.platform_order_no) as prior_orders
from _risk_orders r
left join intermediate.int_orders h
    on h.buyer_id = r.buyer_id and h.created_at < r.created_at
group by r.channel, r.platform_order_no
"""

# the orders around the candidates that a window or a share can count (the receiver address
# for the learned model's buyers-on-address: the rules count nothing by address)
_CONTEXT = f"""
select {ORDER_COLUMNS}
from intermediate.int_orders o
where o.created_at between %(since)s and %(until)s
    and (o.buyer_id in (select buyer_id from _risk_orders)
         or o.buyer_ip in (select buyer_ip from _risk_orders)
         or o.receiver_phone in (select receiver_phone from _risk_orders)
         or o.receiver_address in (select receiver_address from _risk_orders))
"""

# the candidates' cart events (bursts), and who else used their devices and IPs; an identifier
# shared by more buyers than `limit` is no identifier and is left out here already
_CART = """
select e.buyer_id, e.action, e.ip, e.device, e.event_at
from intermediate.int_behaviour_events e
where e.event_at between %(since)s and %(until)s
    and e.action in ('cart_add', 'cart_remove')
    and e.buyer_id in (select buyer_id from _risk_orders)
"""


def _first_buyers(kind: str) -> str:
    """The first `limit` + 1 buyers of each of `mine`'s identifiers of `kind` (device, ip)."""
    return f"""
    select m.kind, m.ident, b.buyer_id
    from mine m
    cross join lateral (
        select distinct e.buyer_id
        from intermediate.int_behaviour_events e
        where e.{kind} = m.ident and e.buyer_id is not null
            and e.event_at between %(since)s and %(until)s
        order by e.buyer_id
        limit %(limit)s + 1
    ) b
    where m.kind = '{kind}'"""


# per identifier, its first `limit` + 1 buyers from the (ident, buyer_id) index: enough to tell
# a shared identifier from a device model or a NAT address, which a few of the candidates' own
# identifiers are; counting all their buyers read nearly the whole log (12.9 s against 0.1 s
# at 1,000,000 orders)
_IDENTIFIERS = f"""
with mine as (
    select distinct v.kind, v.ident
    from intermediate.int_behaviour_events e
    cross join lateral (values ('device', e.device), ('ip', e.ip)) as v (kind, ident)
    where e.event_at between %(since)s and %(until)s
        and v.ident is not null
        and e.buyer_id in (select buyer_id from _risk_orders)
),
shared as ({_first_buyers("device")}
    union all{_first_buyers("ip")}
),
sizes as (
    select kind, ident from shared group by kind, ident having count(*) <= %(limit)s
)
select s.kind, s.ident, s.buyer_id from shared s join sizes using (kind, ident)
"""

_WRITE_ASSESSMENTS = """
insert into ops.risk_assessments
    (channel, platform_order_no, score, signals, assessed_at, config_version, input_hash,
     rule_score, model_version, model_probability)
select channel, platform_order_no, score, signals::jsonb, %(now)s, config_version, input_hash,
    rule_score, model_version, model_probability
from _risk_assessed
on conflict (channel, platform_order_no) do update
    set score = excluded.score, signals = excluded.signals,
        assessed_at = excluded.assessed_at, config_version = excluded.config_version,
        input_hash = excluded.input_hash, rule_score = excluded.rule_score,
        model_version = excluded.model_version, model_probability = excluded.model_probability
    where ops.risk_assessments.input_hash is distinct from excluded.input_hash
returning channel, platform_order_no
"""

# a reviewer's decision, the hold and the queueing time are never overwritten
_WRITE_QUEUE = """
insert into ops.review_queue (channel, platform_order_no, score, hold_until, decision, queued_at)
select a.channel, a.platform_order_no, a.score, %(hold_until)s, null, %(now)s
from _risk_assessed a
join _risk_changed c using (channel, platform_order_no)
where a.decision = 'review'
on conflict (channel, platform_order_no) do update
    set score = excluded.score
    where ops.review_queue.decision is null
        and ops.review_queue.score is distinct from excluded.score
returning (xmax = 0) as inserted
"""

_STAGE_COLUMNS = (
    "channel",
    "platform_order_no",
    "score",
    "signals",
    "decision",
    "config_version",
    "input_hash",
    "rule_score",
    "model_version",
    "model_probability",
)


@dataclass
class RiskRunReport:
    candidates: int = 0
    assessed: int = 0
    queued: int = 0
    requeued: int = 0
    by_decision: dict[str, int] = field(default_factory=dict)
    by_signal: dict[str, int] = field(default_factory=dict)
    examples: pd.DataFrame | None = None
    model_version: str | None = None  # None: the rules alone decided
    held_by_model: int = 0  # candidates held by the model that the rules let pass


def _hash(content_hash: object, fingerprint: str, signals: dict, score: float) -> str:
    payload = json.dumps(signals, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.md5(f"{content_hash}|{fingerprint}|{score}|{payload}".encode()).hexdigest()


def load_inputs(
    conn: psycopg.Connection,
    rules: RiskRules,
    orders: pd.DataFrame,
    *,
    upto: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The context orders and the behaviour events for `orders` (inside the caller's
    transaction: the order keys go to the temp table `_risk_orders`); adds `prior_orders`.
    `upto` caps the context (scoring past orders as they were seen when they arrived)."""
    conn.execute("drop table if exists _risk_orders, _risk_assessed, _risk_changed")
    conn.execute(
        "create temp table _risk_orders (channel text, platform_order_no text, buyer_id text, "
        "buyer_ip text, receiver_phone text, receiver_address text, created_at timestamptz, "
        "primary key (channel, platform_order_no)) on commit drop"
    )
    columns = [
        "channel",
        "platform_order_no",
        "buyer_id",
        "buyer_ip",
        "receiver_phone",
        "receiver_address",
    ]
    keys = orders[[*columns, "created_at"]].astype(object)
    keys = keys.where(pd.notna(keys), None)
    with conn.cursor() as cur, cur.copy(f"copy _risk_orders ({', '.join(keys)}) from stdin") as cp:
        for row in keys.itertuples(index=False):
            cp.write_row(row)
    conn.execute("analyze _risk_orders")
    prior = read_frame(conn, _PRIOR)
    orders = orders.merge(prior, on=["channel", "platform_order_no"], how="left")
    orders["prior_orders"] = pd.to_numeric(orders["prior_orders"]).fillna(0).astype(int)

    window = timedelta(hours=rules.behaviour.window_hours)
    created = pd.to_datetime(orders["created_at"], utc=True)
    since = (created.min() if created.notna().any() else pd.Timestamp.now(tz="UTC")) - window
    until = (created.max() if created.notna().any() else pd.Timestamp.now(tz="UTC")) + window
    if upto is not None:
        until = min(until, pd.Timestamp(upto))
    params = {"since": since, "until": until, "limit": rules.behaviour.identifier_max_buyers}
    context = read_frame(conn, _CONTEXT, params)
    cart = read_frame(conn, _CART, params)
    # devices and IPs in one query: the candidates' identifiers, then a few buyers of each
    identifiers = read_frame(conn, _IDENTIFIERS, params)
    devices = identifiers[identifiers["kind"] == "device"].drop(columns="kind")
    ips = identifiers[identifiers["kind"] == "ip"].drop(columns="kind")
    events = pd.concat(
        [
            cart,
            devices.rename(columns={"ident": "device"}).assign(action="identity"),
            ips.rename(columns={"ident": "ip"}).assign(action="identity"),
        ],
        ignore_index=True,
    )
    return orders, context, events


def decide_risk(
    conn: psycopg.Connection, rules: RiskRules, now: datetime, model: RiskModel | None = None
) -> RiskRunReport:
    """Assess every order awaiting allocation (rules, and `model` when given); write the
    assessments whose inputs or evidence changed, and queue the newly held ones, in one
    transaction."""
    ensure_ops_tables(conn)
    report = RiskRunReport(model_version=model.version if model is not None else None)
    with conn.transaction():
        # one risk run at a time: two would queue the same order twice
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.risk'))")
        orders = read_frame(conn, _CANDIDATES)
        report.candidates = len(orders)
        if orders.empty:
            return report
        orders, context, events = load_inputs(conn, rules, orders)
        result = assess(orders, rules, context=context, events=events)
        if model is not None:
            rules_hold = result["decision"].eq("review").to_numpy()
            features = order_features(orders, result, rules, context=context, events=events)
            result = combine(result, model.probability(features), model, rules.review.threshold)
            report.held_by_model = int((result["decision"].eq("review") & ~rules_hold).sum())
        else:
            result["rule_score"] = result["score"]
            result["model_version"] = None
            result["model_probability"] = None
        content = orders.set_index(["channel", "platform_order_no"])["content_hash"]
        fingerprint = f"{rules.fingerprint()}|{report.model_version}"
        result["input_hash"] = [
            _hash(content.get((c, n)), fingerprint, s, score)
            for c, n, s, score in zip(
                result["channel"],
                result["platform_order_no"],
                result["signals"],
                result["score"],
                strict=True,
            )
        ]
        result["config_version"] = rules.version
        changed, inserted, updated = _write(conn, result, rules, now)
    report.assessed = len(changed)
    report.queued, report.requeued = inserted, updated
    written = result.merge(changed, on=["channel", "platform_order_no"])
    report.by_decision = {
        k: int(v) for k, v in written["decision"].value_counts().sort_index().items()
    }
    report.by_signal = dict(summarise(written)) if len(written) else {}
    if len(written):
        top = written.sort_values(
            ["score", "channel", "platform_order_no"], ascending=[False, True, True]
        )
        top = top.head(5).assign(signals=lambda f: f["signals"].map(lambda s: ", ".join(s)))
        report.examples = top[["channel", "platform_order_no", "score", "decision", "signals"]]
    return report


def _write(
    conn: psycopg.Connection, result: pd.DataFrame, rules: RiskRules, now: datetime
) -> tuple[pd.DataFrame, int, int]:
    conn.execute(
        "create temp table _risk_assessed (channel text, platform_order_no text, score float8, "
        "signals text, decision text, config_version text, input_hash text, rule_score float8, "
        "model_version text, model_probability float8, "
        "primary key (channel, platform_order_no)) on commit drop"
    )
    frame = result.reindex(columns=list(_STAGE_COLUMNS)).astype(object)
    frame = frame.where(pd.notna(frame), None)
    frame["signals"] = frame["signals"].map(
        lambda s: json.dumps(s, ensure_ascii=False, sort_keys=False, default=str)
    )
    with conn.cursor() as cur:
        with cur.copy(f"copy _risk_assessed ({', '.join(_STAGE_COLUMNS)}) from stdin") as copy:
            for row in frame.itertuples(index=False):
                copy.write_row(row)
        cur.execute(_WRITE_ASSESSMENTS, {"now": now})
        changed = pd.DataFrame(cur.fetchall(), columns=["channel", "platform_order_no"])
        cur.execute(
            "create temp table _risk_changed (channel text, platform_order_no text) on commit drop"
        )
        with cur.copy("copy _risk_changed from stdin") as copy:
            for row in changed.itertuples(index=False):
                copy.write_row(row)
        hold_until = now + timedelta(hours=rules.review.hold_hours)
        cur.execute(_WRITE_QUEUE, {"now": now, "hold_until": hold_until})
        flags = [r[0] for r in cur.fetchall()]
    return changed, sum(flags), len(flags) - sum(flags)
