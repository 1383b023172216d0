"""`connectors.merchant_systems.send_allocations` against the sandbox's merchant-systems server
over real HTTP: batches, the WMS's answer summed, idempotent re-sends, retries on 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from connectors.http import RetryPolicy, make_http_client
from connectors.merchant_systems import send_allocations
from sandbox.merchant_systems_api import build_merchant_systems_app, serve_in_thread
from sandbox.world import generate_world

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = END + timedelta(minutes=5)
TOKEN = "send-alloc-token-8d1e"


@pytest.fixture(scope="module")
def world():
    return generate_world(seed=13, orders=1500, end=END)


@pytest.fixture()
def api(world):
    app = build_merchant_systems_app(world, TOKEN, clock=lambda: NOW, time_scale=60)
    server = serve_in_thread(app)
    yield app, server.base_url
    server.stop()


def _open(world) -> list:
    shipped = {(s.channel, s.platform_order_no) for s in world.shipments}
    return [
        o
        for o in world.orders
        if o.status_at() == "paid_pending_review"
        and o.channel != "pos"
        and (o.channel, o.platform_order_no) not in shipped
    ]


def _decisions(orders) -> list[dict]:
    return [
        {
            "channel": o.channel,
            "platform_order_no": o.platform_order_no,
            "warehouse_id": "WH-EAST",
            "carrier": "ZTO",
            "decided_at": pd.Timestamp(NOW),
            "promised_delivery_at": pd.Timestamp(NOW + timedelta(days=2)),
            "rule": "near_stock",  # extra keys are not sent
        }
        for o in orders
    ]


def test_batches_answers_and_idempotent_resend(api, world) -> None:
    app, base_url = api
    orders = _open(world)
    assert len(orders) > 7
    decisions = _decisions(orders)
    decisions.append({**decisions[0], "platform_order_no": "NOT-AN-ORDER"})
    decisions[1] = {**decisions[1], "promised_delivery_at": pd.NaT}
    report = send_allocations(base_url, TOKEN, decisions, batch_size=3)
    assert report.batches == -(-len(decisions) // 3)
    assert report.sent == len(decisions)
    assert report.accepted == len(orders)
    assert report.rejected == [{"platform_order_no": "NOT-AN-ORDER", "reason": "unknown_order"}]
    assert len(app.state.allocations.deliveries()) == len(orders)

    again = send_allocations(base_url, TOKEN, decisions[:-1])
    assert (again.accepted, again.unchanged, again.replaced) == (len(orders), len(orders), 0)
    changed = [{**decisions[0], "carrier": "SF"}]
    assert send_allocations(base_url, TOKEN, changed).replaced == 1
    carriers = {d["platform_order_no"]: d["carrier"] for d in app.state.allocations.deliveries()}
    assert carriers[orders[0].platform_order_no] == "SF"


def test_server_errors_are_retried(api, world) -> None:
    app, base_url = api
    failures = {"left": 2}

    @app.middleware("http")
    async def flaky(request, call_next):  # noqa: ANN001, ANN202
        if request.url.path == "/wms/allocations" and failures["left"] > 0:
            failures["left"] -= 1
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": "boom"}, status_code=503)
        return await call_next(request)

    app.middleware_stack = app.build_middleware_stack()
    policy = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, jitter=0.0)
    with make_http_client(policy=policy) as http:
        report = send_allocations(base_url, TOKEN, _decisions(_open(world)[:2]), http=http)
        assert http.stats("merchant_systems").retries == 2
    assert report.accepted == 2 and failures["left"] == 0


def test_wrong_token_fails_without_leaking_it(api, world) -> None:
    _, base_url = api
    policy = RetryPolicy(attempts=1)
    with make_http_client(policy=policy) as http, pytest.raises(Exception) as err:
        send_allocations(base_url, "wrong-token-xyz", _decisions(_open(world)[:1]), http=http)
    assert "wrong-token-xyz" not in str(err.value)
    assert "401" in str(err.value)
