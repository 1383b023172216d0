"""fulfillment.risk_store on a real PostgreSQL: assessments and the review queue are written
once, a re-run decides nothing again, a changed order is assessed again, and a reviewer's
decision is never overwritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fulfillment.risk_rules import load_risk_rules
from fulfillment.risk_store import decide_risk

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=6)  # 14:00 Beijing

_INT_ORDERS = """
create table intermediate.int_orders (
    channel text, platform_order_no text, buyer_id text, buyer_ip text, receiver_name text,
    receiver_phone text, receiver_address text, province text, country text,
    goods_value numeric, discount_amount numeric, platform_discount numeric,
    shop_discount numeric, currency text, hs_code text, declared_value numeric,
    created_at timestamptz, paid_at timestamptz, content_hash text
)"""

_EVENTS = """
create table intermediate.int_behaviour_events (
    event_id text, buyer_id text, channel text, sku text, platform_order_no text, action text,
    ip text, device text, event_at timestamptz
)"""

_AWAITING = """
create view intermediate.int_orders_awaiting_allocation as
select channel, platform_order_no, content_hash from intermediate.int_orders
where platform_order_no not like 'OLD%'
"""


def _insert_order(conn: psycopg.Connection, no: str, minute: int, **fields: object) -> None:
    row = {
        "channel": "tmall",
        "platform_order_no": no,
        "buyer_id": f"B{no}",
        "buyer_ip": f"10.0.0.{minute}",
        "receiver_name": "张三",
        "receiver_phone": f"138{minute:08d}",
        "receiver_address": f"幸福路{minute}号",
        "province": "浙江省",
        "country": "CN",
        "goods_value": 200,
        "discount_amount": 10,
        "platform_discount": 0,
        "shop_discount": 10,
        "currency": "CNY",
        "hs_code": None,
        "declared_value": None,
        "created_at": T0 + timedelta(minutes=minute),
        "paid_at": T0 + timedelta(minutes=minute, seconds=30),
        "content_hash": f"h-{no}",
    }
    row.update(fields)
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    conn.execute(
        f"insert into intermediate.int_orders ({columns}) values ({marks})", list(row.values())
    )


@pytest.fixture()
def warehouse(fresh_db):
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        # a plain order
        _insert_order(conn, "1", 1)
        # overseas without customs data: always held
        _insert_order(conn, "2", 2, country="US")
        # six orders from one IP in an hour, one buyer, paid at night: held
        for k in range(6):
            night = NOW - timedelta(hours=17, minutes=45) + timedelta(minutes=5 * k)  # 02:15 BJ
            _insert_order(
                conn, f"3{k}", 10 + k, buyer_id="FARM", buyer_ip="1.2.3.4",
                created_at=night, paid_at=night + timedelta(minutes=1),
            )  # fmt: skip
        # a big order of a buyer with history (an old, already shipped order): no first order
        _insert_order(conn, "OLD1", 3, buyer_id="LOYAL", created_at=T0 - timedelta(days=90))
        _insert_order(conn, "4", 4, buyer_id="LOYAL", goods_value=8000)
        # a big first order from an MVNO number: 45 + 35 -> 64, not held
        _insert_order(conn, "5", 5, goods_value=8000, receiver_phone="17012345678")
        # a cart burst before the order
        for k in range(25):
            conn.execute(
                "insert into intermediate.int_behaviour_events "
                "(buyer_id, action, ip, device, event_at) values (%s, %s, %s, %s, %s)",
                ["B6", "cart_add" if k % 2 else "cart_remove", "10.0.0.6", "fp-6",
                 T0 + timedelta(minutes=5, seconds=2 * k)],
            )  # fmt: skip
        _insert_order(conn, "6", 6)
        conn.commit()
        yield conn


def _assessments(conn: psycopg.Connection) -> dict[str, tuple[float, dict]]:
    rows = conn.execute(
        "select platform_order_no, score, signals from ops.risk_assessments"
    ).fetchall()
    return {no: (float(score), signals) for no, score, signals in rows}


def _queue(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "select platform_order_no, score, hold_until, decision from ops.review_queue"
    ).fetchall()
    return {no: (float(score), hold, decision) for no, score, hold, decision in rows}


def test_assess_queue_and_rerun(warehouse: psycopg.Connection) -> None:
    conn = warehouse
    rules = load_risk_rules()
    report = decide_risk(conn, rules, NOW)
    assert report.candidates == 11  # the old order is not awaiting allocation
    assert report.assessed == 11
    assessed = _assessments(conn)
    assert "OLD1" not in assessed
    assert assessed["1"] == (0.0, {})
    assert set(assessed["2"][1]) == {"customs_incomplete"}
    assert {"ip_burst", "night_payment"} <= set(assessed["30"][1])
    assert assessed["30"][1]["ip_burst"]["orders_in_hour"] == 6
    assert "big_first_order" not in assessed["4"][1]  # history from outside the window
    assert set(assessed["5"][1]) == {"big_first_order", "virtual_carrier_phone"}
    assert "cart_churn" in assessed["6"][1]
    assert "cart_churn" not in assessed["1"][1]

    queue = _queue(conn)
    held = {"2", "30", "31", "32", "33", "34", "35"}
    if rules.weights["cart_churn"] > rules.review.threshold:
        held.add("6")
    assert set(queue) == held
    score, hold, decision = queue["2"]
    assert hold == NOW + timedelta(hours=72) and decision is None
    assert report.queued == len(held)
    meta = conn.execute(
        "select distinct config_version, assessed_at from ops.risk_assessments"
    ).fetchall()
    assert meta == [(rules.version, NOW)]

    # a re-run decides nothing again
    again = decide_risk(conn, rules, NOW + timedelta(minutes=10))
    assert (again.candidates, again.assessed, again.queued, again.requeued) == (11, 0, 0, 0)
    assert _queue(conn) == queue

    # a reviewer releases one held order and intercepts another
    conn.execute(
        "update ops.review_queue set decision = 'release', reviewer = 'li', decided_at = %s "
        "where platform_order_no = '30'",
        [NOW + timedelta(hours=1)],
    )
    conn.execute(
        "update ops.review_queue set decision = 'intercept' where platform_order_no = '31'"
    )
    # orders change: the plain one goes overseas, a farm order gets a new address, and a rule
    # change (a new version) reassesses everything
    conn.execute(
        "update intermediate.int_orders set country = 'JP', content_hash = 'h-1b' "
        "where platform_order_no = '1'"
    )
    conn.execute(
        "update intermediate.int_orders set receiver_address = '某某大厦', content_hash = 'h-30b' "
        "where platform_order_no = '30'"
    )
    conn.commit()
    later = NOW + timedelta(hours=2)
    changed = decide_risk(conn, rules, later)
    assert changed.assessed == 2
    assert changed.queued == 1  # order 1 now held; 30 keeps the reviewer's decision
    queue2 = _queue(conn)
    assert queue2["1"][1] == later + timedelta(hours=72)
    assert queue2["30"][2] == "release"
    assert queue2["31"][2] == "intercept"
    assert queue2["30"][1] == queue["30"][1]  # the hold did not move
    assert "b2b_address" in _assessments(conn)["30"][1]

    newer = rules.model_copy(
        update={"version": "test.2", "weights": {**rules.weights, "b2b_address": 0}}
    )
    rerun = decide_risk(conn, newer, later)
    assert rerun.assessed == 11  # a rule change assesses every order again
    assert _queue(conn)["30"][2] == "release"
    assert {
        v for (v,) in conn.execute("select distinct config_version from ops.risk_assessments")
    } == {"test.2"}


def test_an_empty_warehouse_assesses_nothing(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        conn.commit()
        report = decide_risk(conn, load_risk_rules(), NOW)
        assert (report.candidates, report.assessed) == (0, 0)
        assert conn.execute("select count(*) from ops.review_queue").fetchone() == (0,)


def test_shared_devices_and_ips_are_counted_in_the_behaviour_log(fresh_db) -> None:
    """Through the SQL: three buyers on one device fire `shared_device` with its count; a phone
    model or a NAT address used by more than `identifier_max_buyers` buyers fires nothing,
    however many events it has; events outside the candidates' time span do not count."""
    rules = load_risk_rules()
    crowd = rules.behaviour.identifier_max_buyers + 1
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(_INT_ORDERS)
        conn.execute(_EVENTS)
        conn.execute(_AWAITING)
        _insert_order(conn, "1", 1, buyer_id="B1")
        _insert_order(conn, "2", 2, buyer_id="B2")
        events = [
            # B1 shares fp-1 with two other buyers; B1's model and router are everyone's
            ("B1", "fp-1", "10.1.1.1"), ("X1", "fp-1", "10.1.1.2"), ("X2", "fp-1", "10.1.1.3"),
            ("B1", "iphone-15", "100.64.0.1"),
            *[(f"C{k}", "iphone-15", "100.64.0.1") for k in range(crowd) for _ in range(3)],
            # B2 shares fp-2 with one buyer only: not enough
            ("B2", "fp-2", "10.2.2.2"), ("Y1", "fp-2", "10.2.2.3"),
        ]  # fmt: skip
        at = T0 + timedelta(minutes=1)
        for buyer, device, ip in events:
            conn.execute(
                "insert into intermediate.int_behaviour_events "
                "(buyer_id, action, ip, device, event_at) values (%s, 'view', %s, %s, %s)",
                [buyer, ip, device, at],
            )
        # a third buyer on fp-2, but weeks before the orders
        conn.execute(
            "insert into intermediate.int_behaviour_events "
            "(buyer_id, action, ip, device, event_at) values ('Y2', 'view', null, 'fp-2', %s)",
            [T0 - timedelta(days=30)],
        )
        conn.commit()
        decide_risk(conn, rules, NOW)
        assessed = _assessments(conn)
    assert assessed["1"][1]["shared_device"] == {"device": "fp-1", "buyers": 3}
    assert "shared_ip" not in assessed["1"][1]
    assert "shared_device" not in assessed["2"][1]
