"""The sandbox's chargebacks and audits: drawn from the hidden verdicts with noise, served by
the merchant systems' API over real HTTP behind its token."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread
from sandbox.risk_feedback import draw_risk_feedback
from sandbox.world import VERDICTS, generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "merchant-risk-token-41c2"


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=5, orders=5000, days=6, end=END)


def _bad(order) -> bool:  # noqa: ANN001
    return any(v in order.labels for v in VERDICTS)


def test_chargebacks_follow_the_verdicts_with_noise(world) -> None:
    orders = {(o.channel, o.platform_order_no): o for o in world.orders}
    charged = {
        (f.channel, f.platform_order_no) for f in world.risk_feedback if f.kind == "chargeback"
    }
    shipped = {
        k for k, o in orders.items()
        if any(e.type == "ship" for e in o.events) and o.paid_at < END
    }  # fmt: skip
    bad_shipped = {k for k in shipped if _bad(orders[k])}
    honest_shipped = shipped - bad_shipped
    # only shipped orders, never before the shipment nor after the world's end
    assert charged <= shipped
    for f in world.risk_feedback:
        ship = next(e.at for e in orders[f.channel, f.platform_order_no].events if e.type == "ship")
        assert ship < f.reported_at <= END
    # noise both ways: bad orders without a chargeback, honest orders with one
    assert 0 < len(charged & bad_shipped) < len(bad_shipped)
    assert len(charged & honest_shipped) > 0
    rate_bad = len(charged & bad_shipped) / len(bad_shipped)
    rate_honest = len(charged & honest_shipped) / len(honest_shipped)
    assert rate_bad > 0.3 and rate_honest < 0.01
    # a friendly-fraud chargeback claims fraud like a real one
    claims = Counter(f.verdict for f in world.risk_feedback if f.kind == "chargeback")
    assert set(claims) <= {"fraud", "coupon_abuse"}


def test_audits_sample_shipped_orders(world) -> None:
    orders = {(o.channel, o.platform_order_no): o for o in world.orders}
    audits = [f for f in world.risk_feedback if f.kind == "audit"]
    shipped = sum(any(e.type == "ship" for e in o.events) for o in world.orders)
    assert 0.005 * shipped < len(audits) < 0.04 * shipped
    said_bad = Counter(
        (f.verdict != "honest", _bad(orders[f.channel, f.platform_order_no])) for f in audits
    )
    assert said_bad[(False, False)] > 0.9 * len(audits)  # mostly honest, found honest
    assert {f.verdict for f in audits} <= {"honest", "fraud", "coupon_abuse"}


def test_feedback_is_deterministic(world) -> None:
    assert draw_risk_feedback(world) == world.risk_feedback
    ids = [f.feedback_id for f in world.risk_feedback]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_served_over_http_behind_the_token(world) -> None:
    server = serve_in_thread(build_merchant_systems_app(world, TOKEN))
    try:
        url = f"{server.base_url}/risk/feedback"
        assert httpx.get(url).status_code == 401
        bad = httpx.get(url, headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and TOKEN not in bad.text
        items, cursor = [], None
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
            while True:
                params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                body = client.get(url, params=params).json()
                items += body["items"]
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            since = world.risk_feedback[len(world.risk_feedback) // 2].reported_at
            later = client.get(url, params={"since": since.isoformat(), "limit": 1000}).json()
    finally:
        server.stop()
    assert [i["feedback_id"] for i in items] == [f.feedback_id for f in world.risk_feedback]
    first = items[0]
    assert set(first) == {
        "feedback_id", "kind", "channel", "platform_order_no", "reported_at", "verdict",
        "reason", "amount",
    }  # fmt: skip
    assert all(datetime.fromisoformat(i["reported_at"]) >= since for i in later["items"])
