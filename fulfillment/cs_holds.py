"""CS escalation holds: while a buyer's escalated order (the `cs_escalation` watch's criterion,
`quality.cs_escalation`) has an open ticket, every paid order of that buyer paid after the
escalation started waits in `ops.review_queue`; when the tickets close, the hold is released.

The same queue and the same path as risk's holds: routing skips an order with an undecided
queue row, the lock step keeps its stock until `hold_until`, a reviewer may release or
intercept it (`orderpulse review`). A CS hold is a row with `hold_reason = 'cs_escalation'`,
no score, and `hold_evidence` naming the escalated orders, their open tickets and counts.

Reads staging's tickets (`stg_merchant_systems__cs_tickets`, the latest version of each; a
ticket is open until `resolved` or `closed`), `intermediate.int_orders` (buyer and payment
time) and `int_orders_awaiting_allocation` (the orders routing has yet to decide). The buyer key
is the order's `buyer_id` (the ticket's when the order is not loaded), matched across channels
unless `hold.across_channels` is off. Rules: `config/alerts.yaml` `rules.cs_escalation.params`.

Set-based and idempotent: one query builds the orders to hold, one insert queues the new ones
(an existing row, risk's or a reviewer's, is never touched), one guarded update releases the
CS-only holds (no risk score, no decision) whose buyer has no open escalation any more, as
reviewer `system`. A re-run with the same data changes nothing. It takes risk's advisory lock:
the two writers of the queue take turns. An order risk also holds (a score on its row) stays
held for a reviewer when the ticket closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import psycopg

from fulfillment.frames import read_frame
from fulfillment.ops_schema import ensure_ops_tables
from quality.cs_escalation import (
    CsEscalationParams,
    escalation_params,
    escalations_sql,
    parse_escalation_params,
)

HOLD_REASON = "cs_escalation"
SYSTEM_REVIEWER = "system"
# risk_store.decide_risk's lock: one writer of ops.review_queue at a time
QUEUE_LOCK = "orderpulse.risk"

# staging holds one row per ticket, its latest version (unique on ticket_id)
_STAGING_TICKETS = """
select
    ticket_id, channel, platform_order_no, buyer_id, ticket_text, topic,
    coalesce(ticket_status, '') not in ('resolved', 'closed') as is_open, opened_at
from staging.stg_merchant_systems__cs_tickets
where ticket_id is not null
    and opened_at > %(start)s
"""

# the escalations with an open ticket, keyed by the escalated order's buyer
_OPEN_ESCALATIONS = """
create temp table _cs_escalations on commit drop as
with escalations as ({escalations})
select
    escalations.channel,
    escalations.platform_order_no,
    coalesce(orders.buyer_id, escalations.buyer_id) as buyer_id,
    escalations.escalated_at,
    escalations.asks,
    escalations.complaint_mentions,
    escalations.words,
    escalations.open_ticket_ids
from escalations
left join intermediate.int_orders as orders using (channel, platform_order_no)
where escalations.open_tickets > 0
"""

# every order that should be held now: the escalated buyers' orders awaiting allocation (or
# already CS-held), paid after an open escalation of their buyer started
_TO_HOLD = """
create temp table _cs_hold on commit drop as
with candidates as (
    select channel, platform_order_no from intermediate.int_orders_awaiting_allocation
    union
    -- held by an earlier run: kept while the escalation is open
    select channel, platform_order_no from ops.review_queue
    where hold_reason = %(reason)s and decision is null
),

paid as (
    select orders.channel, orders.platform_order_no, orders.buyer_id, orders.paid_at
    from intermediate.int_orders as orders
    join candidates using (channel, platform_order_no)
    where orders.buyer_id in (select buyer_id from _cs_escalations)
        and orders.paid_at is not null
        and orders.paid_at <= %(now)s
),

matched as (
    select
        paid.channel,
        paid.platform_order_no,
        esc.channel as escalated_channel,
        esc.platform_order_no as escalated_order_no,
        jsonb_build_object(
            'channel', esc.channel,
            'platform_order_no', esc.platform_order_no,
            'open_tickets', to_jsonb(esc.open_ticket_ids),
            'asks', esc.asks,
            'complaint_mentions', esc.complaint_mentions,
            'complaint_words', to_jsonb(coalesce(esc.words, '{}'::text[])),
            'escalated_at', esc.escalated_at
        ) as escalation
    from paid
    join _cs_escalations as esc
        on esc.buyer_id = paid.buyer_id
        and (%(across)s or esc.channel = paid.channel)
        and paid.paid_at > esc.escalated_at
        and (esc.channel, esc.platform_order_no) <> (paid.channel, paid.platform_order_no)
),

final as (
    select
        channel,
        platform_order_no,
        jsonb_build_object(
            'escalations',
            jsonb_agg(escalation order by escalated_channel, escalated_order_no)
        ) as evidence
    from matched
    group by channel, platform_order_no
)

select channel, platform_order_no, evidence from final
"""

# a new hold only: whatever row the order has (risk's, a reviewer's, an earlier hold) stays
_QUEUE = """
insert into ops.review_queue
    (channel, platform_order_no, score, hold_until, decision, queued_at, hold_reason,
     hold_evidence)
select channel, platform_order_no, null, %(hold_until)s, null, %(now)s, %(reason)s, evidence
from _cs_hold
where %(enabled)s
on conflict (channel, platform_order_no) do nothing
returning channel, platform_order_no
"""

# guarded like a reviewer's update: only undecided CS-only holds, so a person's decision and a
# risk hold are never overwritten
_RELEASE = """
update ops.review_queue as q
set decision = 'release',
    decided_at = %(now)s,
    reviewer = %(reviewer)s,
    note = 'CS escalation closed: no open ticket on ' || coalesce((
        select string_agg((e ->> 'channel') || ':' || (e ->> 'platform_order_no'), ', ')
        from jsonb_array_elements(q.hold_evidence -> 'escalations') as e
    ), 'the escalated order')
where q.hold_reason = %(reason)s
    and q.score is null
    and q.decision is null
    and not exists (
        select 1 from _cs_hold as h
        where h.channel = q.channel and h.platform_order_no = q.platform_order_no
    )
returning q.channel, q.platform_order_no
"""

_EXAMPLES = """
select q.channel, q.platform_order_no, coalesce(q.decision, 'held') as state, q.reviewer,
    (select string_agg((e ->> 'channel') || ':' || (e ->> 'platform_order_no')
                       || ' tickets ' || (e -> 'open_tickets')::text, '; ')
     from jsonb_array_elements(q.hold_evidence -> 'escalations') as e) as evidence
from ops.review_queue as q
join _cs_touched as t using (channel, platform_order_no)
order by state, q.channel, q.platform_order_no
limit 5
"""


@dataclass
class CsHoldReport:
    escalations_open: int = 0
    held: int = 0  # queued this run
    released: int = 0  # released this run
    holding: int = 0  # CS holds undecided after the run
    examples: pd.DataFrame | None = None


def hold_escalated_buyers(
    conn: psycopg.Connection, params: CsEscalationParams | dict | None, now: datetime
) -> CsHoldReport:
    """Queue the escalated buyers' new paid orders and release the holds whose escalation
    closed, in one transaction under the review queue's lock."""
    p = parse_escalation_params(params)
    ensure_ops_tables(conn)
    report = CsHoldReport()
    args = {
        **escalation_params(p, now),
        "reason": HOLD_REASON,
        "across": p.hold.across_channels,
        "enabled": p.hold.enabled,
        "hold_until": now + timedelta(hours=p.hold.hold_hours),
        "reviewer": SYSTEM_REVIEWER,
    }
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [QUEUE_LOCK])
        conn.execute("drop table if exists _cs_escalations, _cs_hold, _cs_touched")
        sql = _OPEN_ESCALATIONS.format(escalations=escalations_sql(_STAGING_TICKETS))
        conn.execute(sql, args)
        conn.execute("analyze _cs_escalations")
        conn.execute(_TO_HOLD, args)
        with conn.cursor() as cur:
            cur.execute(_QUEUE, args)
            held = cur.fetchall()
            cur.execute(_RELEASE, args)
            released = cur.fetchall()
        conn.execute(
            "create temp table _cs_touched (channel text, platform_order_no text) on commit drop"
        )
        with conn.cursor() as cur, cur.copy("copy _cs_touched from stdin") as copy:
            for row in held + released:
                copy.write_row(row)
        report.escalations_open = conn.execute("select count(*) from _cs_escalations").fetchone()[0]
        report.holding = conn.execute(
            "select count(*) from ops.review_queue where hold_reason = %s and decision is null",
            [HOLD_REASON],
        ).fetchone()[0]
        if held or released:
            report.examples = read_frame(conn, _EXAMPLES)
    report.held, report.released = len(held), len(released)
    return report
