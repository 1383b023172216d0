"""Customer-service escalation (rule `cs_escalation`) → the CS lead: an order its buyer asked
about `asks_threshold` (3) or more times, or whose tickets use complaint words
(`complaint_words`: 投诉, 工商局, 12315, 差评) `complaint_mentions` (2) or more times in all,
among the tickets opened in the last `window_days` (30).

Only the buyer's words count (the ticket text), not the topic CS filed it under (a topic such
as 物流投诉 is CS's label, not the buyer's threat). Reads `marts.fct_cs_tickets` (text masked);
the alert carries counts and words, never the text.

Not done: holding the buyer's new orders until the ticket closes. The review queue
(`ops.review_queue`) holds an order until a reviewer decides and is written by risk only
(`fulfillment/risk_store.py`); a hold released by a ticket's closing would need a second
writer and a release rule there. Left to the risk owners.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from pydantic import Field

from quality.alerts import Alert
from quality.detector_params import DetectorParams, parse_params

RULE = "cs_escalation"


class CsEscalationParams(DetectorParams):
    asks_threshold: int = Field(default=3, ge=1)
    complaint_words: tuple[str, ...] = ("投诉", "工商局", "12315", "差评")
    complaint_mentions: int = Field(default=2, ge=1)
    window_days: float = Field(default=30, gt=0)


_ESCALATIONS = """
with tickets as (
    select channel, platform_order_no, coalesce(ticket_text, '') as ticket_text, topic,
        is_open, opened_at
    from marts.fct_cs_tickets
    where platform_order_no is not null
        and opened_at > %(start)s
        and opened_at <= %(now)s
),

per_order as (
    select
        channel,
        platform_order_no,
        count(*) as asks,
        count(*) filter (where is_open) as open_tickets,
        min(opened_at) as first_opened_at,
        max(opened_at) as last_opened_at,
        array_agg(distinct topic) filter (where topic is not null) as topics
    from tickets
    group by 1, 2
),

word_counts as (
    select
        tickets.channel,
        tickets.platform_order_no,
        words.word,
        sum((length(tickets.ticket_text) - length(replace(tickets.ticket_text, words.word, '')))
            / length(words.word)) as mentions
    from tickets
    cross join unnest(%(words)s::text[]) as words (word)
    group by 1, 2, 3
),

mentions as (
    select
        channel,
        platform_order_no,
        sum(mentions)::int as complaint_mentions,
        array_agg(word order by word) filter (where mentions > 0) as words
    from word_counts
    group by 1, 2
),

final as (
    select
        per_order.*,
        coalesce(mentions.complaint_mentions, 0) as complaint_mentions,
        mentions.words
    from per_order
    left join mentions using (channel, platform_order_no)
)

select * from final
where (asks >= %(asks)s or complaint_mentions >= %(mentions)s)
    and last_opened_at > %(since)s
order by channel, platform_order_no
"""


def detect(
    conn: psycopg.Connection,
    params: object,
    now: datetime,
    since: datetime | None = None,
) -> list[Alert]:
    """One alert per escalated order whose latest ticket arrived after `since`."""
    p = parse_params(RULE, params, CsEscalationParams)
    start = now - timedelta(days=p.window_days)
    rows = conn.execute(
        _ESCALATIONS,
        {
            "start": start,
            "now": now,
            "since": max(since or start, start),
            "words": list(p.complaint_words),
            "asks": p.asks_threshold,
            "mentions": p.complaint_mentions,
        },
    ).fetchall()
    return [_alert(row, p) for row in rows]


def _alert(row: tuple, p: CsEscalationParams) -> Alert:
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
            "buyer_orders_held": False,
        },
        dedup_key=f"order={channel}:{order_no}",
    )
