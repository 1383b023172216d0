"""The push receiver over real HTTP with the sandbox's own signed messages (sandbox/push.py is an
independent implementation of each platform's push signing): a good message is stored once and
answered the platform's way; a bad signature (401), a replay or a stale message (403) is refused
and stored nowhere; the stored events lead to the pushed orders being fetched and loaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from connectors.http import make_http_client
from connectors.marketplace import build_client
from connectors.push_load import fetch_orders, load_pushed_orders, mark_processed, pending_events
from connectors.raw_schema import ensure_raw_tables
from connectors.webhook_app import create_webhook_app
from sandbox.model import MARKETPLACES
from sandbox.push import build_message, latest_state


def _events(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select channel, message_id, topic, order_nos from raw.webhook_events order by id"
    ).fetchall()


@pytest.fixture()
def receiver(fresh_db, serve, sandbox_env_factory):  # noqa: ANN001, ANN201
    env = sandbox_env_factory()
    creds = {c: (lambda c=c: env.credentials(c)) for c in MARKETPLACES}  # resolved lazily
    base = serve(create_webhook_app(fresh_db.url(), creds))
    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_raw_tables(conn, list(MARKETPLACES))
        yield env, f"{base}/webhooks", conn


def _message(env, channel: str, *, sent: datetime | None = None, index: int = 0):  # noqa: ANN001, ANN202
    order = sorted(env.orders(channel).values(), key=lambda o: o.platform_order_no)[index]
    raw_creds = env.sandbox.endpoints["channels"][channel]
    state = latest_state(order)
    return order, build_message(channel, state, raw_creds, sent or datetime.now(UTC))


@pytest.mark.parametrize("channel", MARKETPLACES)
def test_good_message_stored_once_replay_and_bad_signature_refused(channel, receiver) -> None:  # noqa: ANN001
    env, url, conn = receiver
    order, message = _message(env, channel)
    with httpx.Client() as http:
        post = lambda content: http.post(  # noqa: E731
            f"{url}/{channel}", content=content, headers=message.headers
        )
        good = post(message.content)
        assert good.status_code == 200, good.text
        if channel == "douyin":
            assert good.json() == {"code": 0, "msg": "success"}
        stored = _events(conn)
        assert [(c, m, nos) for c, m, _, nos in stored] == [
            (channel, message.message_id, [order.platform_order_no])
        ]

        replay = post(message.content)
        assert replay.status_code == 403

        # the same message with one byte changed no longer matches its signature
        no = order.platform_order_no
        other_no = no[:-1] + ("1" if no[-1] != "1" else "2")
        tampered = message.content.replace(no.encode(), other_no.encode())
        assert tampered != message.content
        assert post(tampered).status_code == 401

        # a message signed with the wrong secret
        endpoints = env.sandbox.endpoints["channels"][channel]
        wrong = {k: (v + "x" if "secret" in k else v) for k, v in endpoints.items()}
        other, _ = _message(env, channel, index=1)
        forged = build_message(channel, latest_state(other), wrong, datetime.now(UTC))
        answer = http.post(f"{url}/{channel}", content=forged.content, headers=forged.headers)
        assert answer.status_code == 401

        # an old message (correctly signed) is outside the replay window
        _, stale = _message(env, channel, index=2, sent=datetime.now(UTC) - timedelta(hours=1))
        answer = http.post(f"{url}/{channel}", content=stale.content, headers=stale.headers)
        assert answer.status_code == 403
    assert _events(conn) == stored  # nothing refused was stored


def test_pushed_orders_are_fetched_loaded_and_marked(receiver) -> None:  # noqa: ANN001
    env, url, conn = receiver
    channel = "douyin"
    pushed = []
    with httpx.Client() as http:
        for index in range(3):
            order, message = _message(env, channel, index=index)
            answer = http.post(f"{url}/{channel}", content=message.content, headers=message.headers)
            assert answer.status_code == 200
            pushed.append(order.platform_order_no)
    events = pending_events(conn, channel=channel)
    assert sorted(no for e in events for no in e.order_nos) == sorted(pushed)
    assert pending_events(conn, channel="jd") == []

    nos, ids = [no for e in events for no in e.order_nos], [e.id for e in events]
    with make_http_client(timeout=5) as http:
        client = build_client(channel, env.credentials(channel), http)
        orders = fetch_orders(client, nos)
        report = load_pushed_orders(conn, client, channel, nos, ids, run_id="push")
        again = load_pushed_orders(conn, client, channel, nos, ids, run_id="push")
    assert {o.platform_order_no for o in orders} == set(pushed)
    assert all(o.payload["_decrypted"]["name"] for o in orders)
    assert (report.stats.inserted, report.order_nos, report.webhook_events) == (3, 3, 3)
    assert (again.stats.inserted, again.stats.unchanged) == (0, 3)  # a re-delivery is a no-op
    assert pending_events(conn) == []
    assert mark_processed(conn, ids) == 0


@pytest.mark.parametrize("channel", ["douyin", "taobao"])
def test_a_pushed_order_the_platform_does_not_know_fails_alone(receiver, channel) -> None:  # noqa: ANN001
    """A push naming an order the platform refuses (it does not exist there) is quarantined
    in raw.rejected_rows with the platform's reason; the other orders of the batch load and
    the events are done, so the next push run is not blocked by it for ever."""
    env, _, conn = receiver
    good = sorted(env.orders(channel))[:2]
    ghost = "9" * len(good[0])
    with make_http_client(timeout=5) as http:
        client = build_client(channel, env.credentials(channel), http)
        report = load_pushed_orders(conn, client, channel, [good[0], ghost, good[1]], [])
    assert (report.stats.inserted, report.refused) == (2, 1)
    loaded = {r[0] for r in conn.execute(f"select platform_order_no from raw.{channel}_orders")}
    assert set(good) <= loaded and ghost not in loaded
    reason = conn.execute(
        "select reason from raw.rejected_rows where source = %s and raw_text = %s",
        [channel, ghost],
    ).fetchone()
    assert reason and "refused by the platform" in reason[0]
