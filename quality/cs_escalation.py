"""Customer-service escalation (rule `cs_escalation`) → the CS lead: an order its buyer asked
about `asks_threshold` (3) or more times, or whose tickets use complaint words
(`complaint_words`: 投诉, 工商局, 12315, 差评) `complaint_mentions` (2) or more times in all,
among the tickets opened in the last `window_days` (30).

Only the buyer's words count (the ticket text), not the topic CS filed it under (a topic such
as 物流投诉 is CS's label, not the buyer's threat). Reads `marts.fct_cs_tickets` (text masked);
the alert carries counts and words, never the text.

The criterion is one query (`escalations_sql`) over any tickets relation: the watch runs it on
the marts, the hold (`fulfillment/cs_holds.py`) on staging (decisions never read marts), so
both agree on what an escalation is. While an escalated order has an open ticket, its buyer's
new paid orders are held in `ops.review_queue` (`params.hold`); the alert says how many are.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from pydantic import Field

from fulfillment.ops_schema import ensure_ops_tables
from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "cs_escalation"


class CsHoldParams(DetectorParams):
    """Holding an escalated buyer's new orders (fulfillment/cs_holds.py)."""

    enabled: bool = True
    # one buyer id across channels (the merchant's id) or per channel (platform open ids)
    across_channels: bool = True
    # the hold's `hold_until`: the stock stays locked this long; the order itself stays held
    # until the ticket closes or a reviewer decides
    hold_hours: float = Field(default=72, gt=0)


class CsEscalationParams(DetectorParams):
    asks_threshold: int = Field(default=3, ge=1)
    complaint_words: tuple[str, ...] = ("投诉", "工商局", "12315", "差评")
    complaint_mentions: int = Field(default=2, ge=1)
    window_days: float = Field(default=30, gt=0)
    hold: CsHoldParams = Field(default_factory=CsHoldParams)


# `{tickets}` selects ticket_id, channel, platform_order_no, buyer_id, ticket_text, topic,
# is_open, opened_at; the window is applied here. Only the orders over a threshold in all go
# through the running counts, which find `escalated_at`: the ticket at which the order crossed
# a threshold (asks or mentions counted up to and including it).
_ESCALATIONS = """
with tickets as (
    select ticket_id, channel, platform_order_no, buyer_id,
        coalesce(ticket_text, '') as ticket_text, topic, is_open, opened_at
    from ({tickets}) as source
    where platform_order_no is not null
        and opened_at > %(start)s
        and opened_at <= %(now)s
),

word_counts as (
    select
        tickets.ticket_id,
        tickets.channel,
        tickets.platform_order_no,
        words.word,
        (length(tickets.ticket_text) - length(replace(tickets.ticket_text, words.word, '')))
            / length(words.word) as mentions
    from tickets
    cross join unnest(%(words)s::text[]) as words (word)
    where strpos(tickets.ticket_text, words.word) > 0
),

per_ticket as (
    select
        tickets.*,
        coalesce(counted.mentions, 0) as mentions
    from tickets
    left join (
        select ticket_id, sum(mentions)::int as mentions from word_counts group by 1
    ) as counted using (ticket_id)
),

over_threshold as (
    select channel, platform_order_no
    from per_ticket
    group by 1, 2
    having count(*) >= %(asks)s or sum(mentions) >= %(mentions)s
),

running as (
    select
        per_ticket.*,
        count(*) over so_far as asks_so_far,
        sum(per_ticket.mentions) over so_far as mentions_so_far
    from per_ticket
    join over_threshold using (channel, platform_order_no)
    window so_far as (
        partition by per_ticket.channel, per_ticket.platform_order_no
        order by per_ticket.opened_at, per_ticket.ticket_id
        rows between unbounded preceding and current row
    )
),

per_order as (
    select
        channel,
        platform_order_no,
        max(buyer_id) as buyer_id,
        count(*) as asks,
        count(*) filter (where is_open) as open_tickets,
        min(opened_at) as first_opened_at,
        max(opened_at) as last_opened_at,
        array_agg(distinct topic) filter (where topic is not null) as topics,
        sum(mentions)::int as complaint_mentions,
        min(opened_at) filter (
            where asks_so_far >= %(asks)s or mentions_so_far >= %(mentions)s
        ) as escalated_at,
        array_agg(ticket_id order by opened_at, ticket_id) filter (where is_open)
            as open_ticket_ids
    from running
    group by 1, 2
),

words_used as (
    select
        channel,
        platform_order_no,
        array_agg(distinct word order by word) as words
    from word_counts
    where mentions > 0
    group by 1, 2
),

final as (
    select
        per_order.*,
        words_used.words
    from per_order
    left join words_used using (channel, platform_order_no)
)

select * from final
"""

_MARTS_TICKETS = """
select ticket_id, channel, platform_order_no, buyer_id, ticket_text, topic, is_open, opened_at
from marts.fct_cs_tickets
"""

_ALERTS = """
select channel, platform_order_no, asks, open_tickets, first_opened_at, last_opened_at,
    topics, complaint_mentions, words
from escalations
where last_opened_at > %(since)s
order by channel, platform_order_no
"""

# the buyer's orders held now because of each escalated order
_HELD = """
select e ->> 'channel', e ->> 'platform_order_no', count(*)
from ops.review_queue q
cross join lateral jsonb_array_elements(q.hold_evidence -> 'escalations') as e
where q.hold_reason = 'cs_escalation' and q.decision is null
group by 1, 2
"""


def escalations_sql(tickets: str) -> str:
    """The escalated orders among `tickets` (a select of ticket_id, channel,
    platform_order_no, buyer_id, ticket_text, topic, is_open, opened_at), as a query taking
    the parameters of `escalation_params`."""
    return _ESCALATIONS.format(tickets=tickets)


def escalation_params(p: CsEscalationParams, now: datetime) -> dict:
    return {
        "start": now - timedelta(days=p.window_days),
        "now": now,
        "words": list(p.complaint_words),
        "asks": p.asks_threshold,
        "mentions": p.complaint_mentions,
    }


def parse_escalation_params(params: object) -> CsEscalationParams:
    return parse_params(RULE, params, CsEscalationParams)


def detect(
    conn: psycopg.Connection,
    params: object,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """One alert per escalated order whose latest ticket arrived after `since`."""
    p = parse_escalation_params(params)
    args = escalation_params(p, now)
    query = f"with escalations as ({escalations_sql(_MARTS_TICKETS)}) {_ALERTS}"
    rows = conn.execute(query, {**args, "since": max(since or args["start"], args["start"])})
    rows = rows.fetchall()
    held: dict[tuple[str, str], int] = {}
    if rows:
        ensure_ops_tables(conn)
        held = {(c, n): int(k) for c, n, k in conn.execute(_HELD).fetchall()}
    return [_alert(row, p, held.get((row[0], row[1]), 0)) for row in rows]


def _alert(row: tuple, p: CsEscalationParams, held: int) -> Alert:
    channel, order_no, asks, open_tickets, first, last, topics, mentions, words = row
    why = []
    if asks >= p.asks_threshold:
        why.append(f"asked {asks} times")
    if mentions >= p.complaint_mentions:
        why.append(f"complaint words {mentions} times ({', '.join(words or [])})")
    return Alert(
        rule=RULE,
        subject=f"{channel} order {order_no}: buyer {' and '.join(why)}",
        facts={
            "channel": channel,
            "platform_order_no": order_no,
            "asks": int(asks),
            "open_tickets": int(open_tickets),
            "complaint_mentions": int(mentions),
            "complaint_words": list(words or []),
            "topics": sorted(topics or []),
            "first_ticket_at": first.isoformat(),
            "last_ticket_at": last.isoformat(),
            # the policy (new paid orders held while a ticket is open) and the holds so far
            "buyer_new_orders_held": p.hold.enabled,
            "orders_held_now": held,
        },
        dedup_key=f"order={channel}:{order_no}",
    )
