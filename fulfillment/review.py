"""A reviewer's decision on a held order, risk's or a CS escalation's (`orderpulse review`):
release it (routing decides it on its next run, its stock stays locked meanwhile) or
intercept it (it closes and the lock step releases its stock).

One row of `ops.review_queue` per held order; the decision, the reviewer, the time and a note
are written once: a decision is never overwritten (a second reviewer is told who decided what
and when). The update is guarded by `decision is null`, so two reviewers at once cannot both
decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from fulfillment.ops_schema import ensure_ops_tables

Decision = Literal["release", "intercept"]
NEXT_STEP = {
    "release": "routing decides it on its next run (its stock stays locked until it ships)",
    "intercept": "it closes; the lock step releases its stock on its next run",
}


PAST = {"release": "released", "intercept": "intercepted"}


class ReviewError(ValueError):
    """The review cannot be recorded; the message says why and what to do."""


@dataclass(frozen=True)
class ReviewOutcome:
    channel: str
    platform_order_no: str
    decision: Decision
    reviewer: str
    decided_at: datetime
    note: str | None
    score: float | None

    @property
    def next_step(self) -> str:
        return NEXT_STEP[self.decision]


_HELD = """
select channel, platform_order_no, score, decision, reviewer, decided_at
from ops.review_queue
where platform_order_no = %(no)s and (%(channel)s::text is null or channel = %(channel)s)
order by channel
"""
_DECIDE = """
update ops.review_queue
set decision = %(decision)s, decided_at = %(at)s, reviewer = %(reviewer)s, note = %(note)s
where channel = %(channel)s and platform_order_no = %(no)s and decision is null
returning score
"""


def parse_order(order: str, channel: str | None = None) -> tuple[str | None, str]:
    """`channel:number` or a bare number (with `channel` from the option, if any)."""
    if ":" in order:
        named, number = order.split(":", 1)
        if channel is not None and channel != named:
            raise ReviewError(f"{order!r} names channel {named!r} but --channel is {channel!r}")
        return named, number
    return channel, order


def record_review(
    conn: psycopg.Connection,
    order: str,
    decision: Decision,
    reviewer: str,
    now: datetime,
    note: str | None = None,
    channel: str | None = None,
) -> ReviewOutcome:
    """Record `decision` on the held order `order` (see `parse_order`), in one transaction."""
    if decision not in NEXT_STEP:
        raise ReviewError(f"decision {decision!r}: use release or intercept")
    if not reviewer.strip():
        raise ReviewError("a review needs the reviewer's name (--reviewer)")
    channel, number = parse_order(order, channel)
    ensure_ops_tables(conn)
    with conn.transaction():
        held = conn.execute(_HELD, {"no": number, "channel": channel}).fetchall()
        if not held:
            raise ReviewError(
                f"order {order} is not in ops.review_queue: only held orders (risk, CS escalation) "
                "are reviewed "
                "(list them: orderpulse db psql -c 'select * from ops.review_queue "
                "where decision is null')"
            )
        if len(held) > 1:
            channels = ", ".join(row[0] for row in held)
            raise ReviewError(
                f"order number {number} is held on several channels ({channels}): name one, "
                f"e.g. {held[0][0]}:{number}"
            )
        held_channel, _, _, earlier, who, when = held[0]
        if earlier is not None:
            at = f" at {when:%Y-%m-%d %H:%M %Z}" if when else ""
            raise ReviewError(
                f"{held_channel}:{number} was already decided ({earlier}, by {who or 'risk'}"
                f"{at}): a reviewer's decision is never overwritten"
            )
        row = conn.execute(
            _DECIDE,
            {"decision": decision, "at": now, "reviewer": reviewer, "note": note,
             "channel": held_channel, "no": number},
        ).fetchone()  # fmt: skip
        if row is None:  # another reviewer decided between the read and the update
            raise ReviewError(f"{held_channel}:{number} was decided meanwhile by someone else")
    score = float(row[0]) if row[0] is not None else None
    return ReviewOutcome(held_channel, number, decision, reviewer, now, note, score)
