"""Chargebacks and audits pulled from the sandbox's merchant systems API over HTTP into a real
PostgreSQL: idempotent, incremental, validated at the edge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from connectors.risk_feedback import ingest_risk_feedback
from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread, set_world
from sandbox.risk_feedback import RiskFeedback
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "merchant-feedback-token-5d1e"


def _feedback(world, n: int = 30) -> list[RiskFeedback]:  # noqa: ANN001
    """Hand-built records on the world's orders, one every hour up to the end."""
    out = []
    for i, order in enumerate(world.orders[:n]):
        kind = "chargeback" if i % 3 == 0 else "audit"
        verdict = "fraud" if kind == "chargeback" else ("honest", "coupon_abuse")[i % 2]
        out.append(
            RiskFeedback(
                f"RF{i + 1:08d}", kind, order.channel, order.platform_order_no,
                END - timedelta(hours=n - i), verdict,
                "unauthorized_payment" if kind == "chargeback" else "audit", order.paid_amount,
            )
        )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def world():
    small = generate_world(seed=4, orders=60, end=END)
    return dataclasses.replace(small, risk_feedback=_feedback(small))


@pytest.fixture()
def api(world):
    app = build_merchant_systems_app(world, TOKEN)
    server = serve_in_thread(app)
    yield app, server.base_url
    server.stop()


@pytest.fixture()
def conn(fresh_db):
    with psycopg.connect(fresh_db.url(), autocommit=True) as c:
        yield c


def _rows(conn) -> list[tuple]:  # noqa: ANN001
    return conn.execute(
        "select feedback_id, source_modified_at, payload, loaded_at from raw.risk_feedback "
        "order by feedback_id"
    ).fetchall()


def test_load_is_idempotent_and_incremental(conn, api, world) -> None:
    app, base_url = api
    half = world.risk_feedback[:15]
    set_world(app, dataclasses.replace(world, risk_feedback=half))
    first = ingest_risk_feedback(conn, base_url, TOKEN, run_id="run-1")
    assert (first.received, first.inserted, first.rejected) == (15, 15, 0)
    set_world(app, world)
    second = ingest_risk_feedback(conn, base_url, TOKEN, run_id="run-2")
    # re-read from the cursor less the 10-minute lookback: the last old record, then 15 new
    assert (second.received, second.inserted, second.updated) == (16, 15, 0)
    rows = _rows(conn)
    assert [r[0] for r in rows] == [f.feedback_id for f in world.risk_feedback]
    got = rows[0][2]
    want = world.risk_feedback[0]
    assert (got["kind"], got["verdict"], got["platform_order_no"]) == (
        want.kind, want.verdict, want.platform_order_no,
    )  # fmt: skip
    assert rows[0][1] == want.reported_at and Decimal(got["amount"]) == want.amount
    # a re-run changes nothing: no row inserted, updated or re-stamped
    before = _rows(conn)
    again = ingest_risk_feedback(conn, base_url, TOKEN, run_id="run-3")
    assert (again.inserted, again.updated) == (0, 0)
    assert _rows(conn) == before


def test_bad_records_are_rejected_at_the_edge(conn, api, world) -> None:
    app, base_url = api
    late = END - timedelta(minutes=1)
    good = world.risk_feedback[0]
    broken = [
        dataclasses.replace(good, feedback_id="RFX1", kind="refund", reported_at=late),
        dataclasses.replace(good, feedback_id="RFX2", verdict="honest", reported_at=late),
        dataclasses.replace(good, feedback_id="RFX3", platform_order_no="", reported_at=late),
        dataclasses.replace(good, feedback_id="RFX4", amount=Decimal("-5"), reported_at=late),
    ]
    set_world(app, dataclasses.replace(world, risk_feedback=[*world.risk_feedback, *broken]))
    stats = ingest_risk_feedback(conn, base_url, TOKEN)
    assert (stats.inserted, stats.rejected) == (len(world.risk_feedback), 4)
    reasons = [
        r[0]
        for r in conn.execute(
            "select reason from raw.rejected_rows where source = 'merchant_systems.risk_feedback'"
            " order by id"
        ).fetchall()
    ]
    assert reasons[0].startswith("kind:") and "never honest" in reasons[1]
    assert reasons[2].startswith("platform_order_no:") and reasons[3].startswith("amount:")
    loaded = conn.execute("select count(*) from raw.risk_feedback where feedback_id like 'RFX%'")
    assert loaded.fetchone()[0] == 0
