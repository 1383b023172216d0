"""CS escalation holds on a real PostgreSQL (hand-built minimal staging/intermediate tables):
an escalated buyer's orders paid after the escalation started wait in ops.review_queue (across
channels), routing's own candidate query skips them, and a closed ticket releases them as
`system` unless a reviewer decided or risk holds the order too; a re-run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fulfillment.cs_holds import hold_escalated_buyers
from fulfillment.ops_schema import ensure_ops_tables
from fulfillment.review import record_review
from fulfillment.routing_store import _CANDIDATES as ROUTING_CANDIDATES
from kernel.database import PgConn
from quality.cs_escalation import CsEscalationParams

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
PARAMS = CsEscalationParams()

TABLES = """
create table staging.stg_merchant_systems__cs_tickets (
    ticket_id text, channel text, platform_order_no text, buyer_id text, topic text,
    ticket_text text, ticket_status text, opened_at timestamptz, updated_at timestamptz);
create table intermediate.int_orders (
    channel text, platform_order_no text, buyer_id text, paid_at timestamptz);
create table intermediate.int_orders_awaiting_allocation (
    channel text, platform_order_no text, province text, city text, district text,
    goods_value numeric, freight numeric, paid_at timestamptz, content_hash text);
create table raw.address_geo (
    channel text, platform_order_no text, latitude float8, longitude float8, address_hash text);
"""

# (channel, order, buyer, paid hours before NOW, awaiting allocation)
ORDERS = [
    ("taobao", "E", "B1", 72, False),  # the order B1 complains about (stuck, not new)
    ("taobao", "OLD", "B1", 8, True),  # paid before the escalation started (6 h ago)
    ("jd", "NEW", "B1", 2, True),  # another channel, same buyer id
    ("taobao", "NEW2", "B1", 1, True),
    ("pdd", "OTHER", "B2", 1, True),  # another buyer
]
# B1's tickets on E: one complaint word, then two more (12315, 投诉): escalated at the second
TICKETS = [
    ("T1", "taobao", "E", "B1", "再不发货我就投诉了", "resolved", 10),
    ("T2", "taobao", "E", "B1", "还是没发货，我要打12315投诉", "open", 6),
    ("T3", "pdd", "OTHER", "B2", "请问什么时候发货？", "open", 1),
]


def build_world(c: psycopg.Connection, now: datetime) -> None:
    """The minimal input tables with ORDERS and TICKETS, times relative to `now`."""
    c.execute(TABLES)
    ensure_ops_tables(c)
    for channel, no, buyer, hours, awaiting in ORDERS:
        paid = now - timedelta(hours=hours)
        c.execute(
            "insert into intermediate.int_orders values (%s, %s, %s, %s)",
            [channel, no, buyer, paid],
        )
        if awaiting:
            c.execute(
                "insert into intermediate.int_orders_awaiting_allocation (channel, "
                "platform_order_no, paid_at, content_hash) values (%s, %s, %s, 'h')",
                [channel, no, paid],
            )
    for ticket, channel, no, buyer, text, status, hours in TICKETS:
        at = now - timedelta(hours=hours)
        c.execute(
            "insert into staging.stg_merchant_systems__cs_tickets values "
            "(%s, %s, %s, %s, '催发货', %s, %s, %s, %s)",
            [ticket, channel, no, buyer, text, status, at, at],
        )


@pytest.fixture()
def conn(fresh_db: PgConn) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        build_world(c, NOW)
        yield c


def queue(c: psycopg.Connection) -> dict[tuple[str, str], tuple]:
    rows = c.execute(
        "select channel, platform_order_no, score, hold_until, decision, queued_at, "
        "decided_at, reviewer, note, hold_reason, hold_evidence from ops.review_queue"
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def routed(c: psycopg.Connection) -> set[tuple[str, str]]:
    """The orders routing would decide now (its own candidate query)."""
    rows = c.execute(ROUTING_CANDIDATES, {"fingerprint": "f"}).fetchall()
    return {(r[0], r[1]) for r in rows}


def test_new_orders_of_an_escalated_buyer_are_held_across_channels(conn) -> None:  # noqa: ANN001
    assert routed(conn) == {("taobao", "OLD"), ("jd", "NEW"), ("taobao", "NEW2"), ("pdd", "OTHER")}
    report = hold_escalated_buyers(conn, PARAMS, NOW)
    assert (report.escalations_open, report.held, report.released) == (1, 2, 0)
    held = queue(conn)
    assert set(held) == {("jd", "NEW"), ("taobao", "NEW2")}
    score, hold_until, decision, queued_at, _, _, _, reason, evidence = held[("jd", "NEW")]
    assert (score, decision, reason) == (None, None, "cs_escalation")
    assert (hold_until, queued_at) == (NOW + timedelta(hours=72), NOW)
    [escalation] = evidence["escalations"]
    assert escalation["platform_order_no"] == "E" and escalation["open_tickets"] == ["T2"]
    assert escalation["complaint_mentions"] == 3
    assert escalation["complaint_words"] == ["12315", "投诉"]
    # routing's own path skips the held orders and only them
    assert routed(conn) == {("taobao", "OLD"), ("pdd", "OTHER")}

    # re-run: nothing changes
    again = hold_escalated_buyers(conn, PARAMS, NOW + timedelta(minutes=10))
    assert (again.held, again.released, again.holding) == (0, 0, 2)
    assert queue(conn) == held

    # one buyer id per channel: only the same channel's new order is held
    per_channel = CsEscalationParams(hold={"across_channels": False})
    conn.execute("truncate ops.review_queue")
    hold_escalated_buyers(conn, per_channel, NOW)
    assert set(queue(conn)) == {("taobao", "NEW2")}


def test_closing_the_ticket_releases_unless_a_person_or_risk_decides(conn) -> None:  # noqa: ANN001
    conn.execute(
        "insert into intermediate.int_orders values ('kuaishou', 'RISKY', 'B1', %s)",
        [NOW - timedelta(hours=3)],
    )
    conn.execute(
        "insert into intermediate.int_orders_awaiting_allocation (channel, platform_order_no, "
        "paid_at, content_hash) values ('kuaishou', 'RISKY', %s, 'h')",
        [NOW - timedelta(hours=3)],
    )
    hold_escalated_buyers(conn, PARAMS, NOW)
    # risk scores RISKY above its threshold afterwards (risk_store's upsert of a held order)
    conn.execute(
        "insert into ops.review_queue (channel, platform_order_no, score, hold_until, queued_at)"
        " values ('kuaishou', 'RISKY', 91, %(h)s, %(n)s) on conflict (channel, platform_order_no)"
        " do update set score = excluded.score where ops.review_queue.decision is null",
        {"h": NOW + timedelta(hours=72), "n": NOW},
    )
    # a reviewer intercepts NEW2 while the ticket is open
    record_review(conn, "taobao:NEW2", "intercept", "li.wei", NOW + timedelta(minutes=5))

    conn.execute(
        "update staging.stg_merchant_systems__cs_tickets set ticket_status = 'resolved', "
        "updated_at = %s where ticket_id = 'T2'",
        [NOW + timedelta(minutes=30)],
    )
    later = NOW + timedelta(hours=1)
    report = hold_escalated_buyers(conn, PARAMS, later)
    assert (report.escalations_open, report.held, report.released, report.holding) == (0, 0, 1, 1)
    rows = queue(conn)
    # decision, queued_at, decided_at, reviewer, note
    assert rows[("jd", "NEW")][2:6] == ("release", NOW, later, "system")
    assert rows[("jd", "NEW")][6] == "CS escalation closed: no open ticket on taobao:E"
    assert rows[("taobao", "NEW2")][2] == "intercept"  # the reviewer's decision survives
    assert rows[("taobao", "NEW2")][5] == "li.wei"
    assert rows[("kuaishou", "RISKY")][2] is None  # risk holds it: a reviewer decides
    assert routed(conn) == {("taobao", "OLD"), ("pdd", "OTHER"), ("jd", "NEW")}

    # re-run after the release: nothing changes
    again = hold_escalated_buyers(conn, PARAMS, later + timedelta(minutes=10))
    assert (again.held, again.released) == (0, 0)
    assert queue(conn) == rows
