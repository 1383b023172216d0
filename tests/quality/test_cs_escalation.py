"""CS escalation: an order asked about 3+ times, or with complaint words twice in the buyer's
tickets, alerts the CS lead once per order; two polite asks, one complaint word or a topic
named 投诉 by CS do not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from fulfillment.ops_schema import ensure_ops_tables
from quality import cs_escalation
from tests.quality.crafted_marts import create, insert

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PARAMS = {
    "asks_threshold": 3,
    "complaint_words": ["投诉", "工商局", "12315", "差评"],
    "complaint_mentions": 2,
}


@pytest.fixture()
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        create(c, "marts.fct_cs_tickets")
        yield c


def tickets(order_no: str, texts: list[str], topic: str = "物流咨询") -> list[dict]:
    return [
        {"ticket_id": f"{order_no}-{k}", "channel": "taobao", "platform_order_no": order_no,
         "topic": topic, "ticket_text": text, "is_open": k == len(texts) - 1,
         "opened_at": NOW - timedelta(hours=10 - k), "ticket_status": "open"}
        for k, text in enumerate(texts)
    ]  # fmt: skip


def test_repeated_asks_and_complaint_words_alert_once_per_order(
    conn: psycopg.Connection,
) -> None:
    rows = tickets("A", ["什么时候发货？", "还没发货吗", "再不发货我就退款"])  # asked 3 times
    rows += tickets("B", ["再不处理我就投诉", "已经打了12315"])  # 2 complaint words
    rows += tickets("C", ["东西不错，差评是误点的，差评撤回"])  # 2 mentions in one ticket
    insert(conn, "marts.fct_cs_tickets", rows)
    alerts = {a.dedup_key: a for a in cs_escalation.detect(conn, PARAMS, NOW)}
    assert set(alerts) == {"order=taobao:A", "order=taobao:B", "order=taobao:C"}
    assert alerts["order=taobao:A"].facts["asks"] == 3
    b = alerts["order=taobao:B"].facts
    assert b["complaint_mentions"] == 2 and b["complaint_words"] == ["12315", "投诉"]
    assert b["open_tickets"] == 1 and "ticket_text" not in b
    # the cursor has seen their last tickets: nothing new until another arrives
    assert cs_escalation.detect(conn, PARAMS, NOW, since=NOW - timedelta(hours=1)) == []


def test_polite_asks_and_a_complaint_topic_stay_quiet(conn: psycopg.Connection) -> None:
    rows = tickets("A", ["请问什么时候到？", "谢谢"])
    rows += tickets("B", ["快递超时了，我要投诉"], topic="物流投诉")  # one word; topic is CS's
    insert(conn, "marts.fct_cs_tickets", rows)
    assert cs_escalation.detect(conn, PARAMS, NOW) == []


def test_the_alert_counts_the_buyers_orders_held_for_it(conn: psycopg.Connection) -> None:
    insert(conn, "marts.fct_cs_tickets", tickets("B", ["再不处理我就投诉", "已经打了12315"]))
    ensure_ops_tables(conn)
    evidence = {"escalations": [{"channel": "taobao", "platform_order_no": "B"}]}
    conn.execute(
        "insert into ops.review_queue (channel, platform_order_no, hold_until, hold_reason, "
        "hold_evidence) values ('jd', 'N1', %(h)s, 'cs_escalation', %(e)s), "
        "('jd', 'N2', %(h)s, 'cs_escalation', %(e)s)",
        {"h": NOW + timedelta(hours=72), "e": Jsonb(evidence)},
    )
    conn.execute("update ops.review_queue set decision = 'release' where platform_order_no = 'N2'")
    [alert] = cs_escalation.detect(conn, PARAMS, NOW)
    assert alert.facts["buyer_new_orders_held"] is True
    assert alert.facts["orders_held_now"] == 1  # N2 was released
