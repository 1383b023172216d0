"""The webhook receiver restarted while the platform pushes (the sandbox's signed messages over
real HTTP, the receiver served by uvicorn as `orderpulse up` serves it): pushes sent while it is
down fail and are stored nowhere; the platform's redelivery of the same message ids is
accepted once it is back, a redelivery of a stored message is refused as a replay; a restart in
the middle of a stream of pushes loses none that the platform redelivers. It ends with raw equal
to the truth: every pushed order loaded once, in its latest version."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

import psycopg
import pytest
import uvicorn

from connectors.credentials import load_credentials
from connectors.http import make_http_client
from connectors.marketplace import build_client
from connectors.push_load import load_pushed_orders, pending_events
from connectors.raw_schema import ensure_raw_tables
from connectors.webhook_app import create_webhook_app
from sandbox.model import MARKETPLACES
from sandbox.push import Delivery, Pusher, latest_state
from tests.connectors import platform_truth
from tests.faults.ground_truth import assert_raw_equals_truth, truth_of

CHANNEL = "douyin"


class _Receiver:
    """The receiver app on one loopback port, stopped and started again on that port."""

    def __init__(self, app) -> None:  # noqa: ANN001 (an ASGI app)
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        """uvicorn's graceful stop: requests in flight finish, new connections are refused."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


def _stored(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select message_id from raw.webhook_events where channel = %s", [CHANNEL]
    ).fetchall()
    return [m for (m,) in rows]


def _codes(deliveries: Sequence[Delivery]) -> set[int | None]:
    return {d.status_code for d in deliveries}


@pytest.mark.slow  # about 6 s: three receiver starts, ~60 pushes and their loads
def test_receiver_restarted_while_pushes_arrive_loses_nothing_redelivered(
    fresh_db,  # noqa: ANN001
    fault_sandbox,  # noqa: ANN001 (a Sandbox)
) -> None:
    sandbox_file = fault_sandbox.home / "sandbox.json"
    creds = {c: (lambda c=c: load_credentials(c, sandbox_file)) for c in MARKETPLACES}
    receiver = _Receiver(create_webhook_app(fresh_db.url(), creds))
    orders = sorted(
        (o for o in fault_sandbox.world.orders if o.channel == CHANNEL),
        key=lambda o: o.platform_order_no,
    )
    states = {o.platform_order_no: latest_state(o) for o in orders}
    numbers = sorted(no for no, state in states.items() if state is not None)
    # a few pushes while it is down: each costs the platform's retry waits (0.6 s)
    first, second, rest = numbers[:10], numbers[10:13], numbers[13:]
    assert len(rest) > 20
    pusher = Pusher("http://127.0.0.1:1/unused", fault_sandbox.endpoints["channels"], timeout=2)

    def push(nos: Sequence[str]) -> list[Delivery]:
        return pusher.push_states(CHANNEL, [states[no] for no in nos])

    with psycopg.connect(fresh_db.url(), autocommit=True) as conn:
        ensure_raw_tables(conn, list(MARKETPLACES))
        receiver.start()
        pusher.webhook_url = receiver.url
        try:
            assert _codes(push(first)) == {200}

            # down: the platform's pushes fail (after its quick retries); nothing is stored
            receiver.stop()
            down = push(second)
            assert _codes(down) == {None} and all(d.error for d in down)
            assert len(_stored(conn)) == len(first)

            # back: the platform redelivers the same message ids and they are stored; a
            # redelivery of a message stored before is a replay, refused and not stored again
            receiver.start()
            assert _codes(push(second)) == {200}
            assert _codes(push(first[:3])) == {403}

            # restarted while a stream of pushes arrives
            streamed: list[Delivery] = []
            sender = threading.Thread(target=lambda: streamed.extend(push(rest)))
            sender.start()
            deadline = time.monotonic() + 30
            while len(_stored(conn)) < len(first) + len(second) + 3:
                assert time.monotonic() < deadline, "no streamed push arrived"
                time.sleep(0.01)
            receiver.stop()
            receiver.start()
            sender.join(timeout=60)
            # whatever failed in the restart, the platform redelivers: stored now (200), or it
            # had been stored and only its answer was lost (403, a replay)
            failed = [d.platform_order_no for d in streamed if not d.ok]
            assert _codes(push(failed)) <= {200, 403}
        finally:
            receiver.stop()
            pusher.close()

        stored = _stored(conn)
        sent = {d.message_id for d in streamed}
        assert len(stored) == len(set(stored)) == len(numbers)  # every message once
        assert sent <= set(stored)

        # the push sensor's step: fetch the named orders, then raw equals the truth
        events = pending_events(conn, channel=CHANNEL)
        named = [no for event in events for no in event.order_nos]
        with make_http_client(timeout=5) as http:
            client = build_client(CHANNEL, load_credentials(CHANNEL, sandbox_file), http)
            load_pushed_orders(conn, client, CHANNEL, named, [e.id for e in events], run_id="push")
        truth = truth_of(fault_sandbox.truth()["orders"], CHANNEL)
        assert sorted(named) == sorted(truth)
        assert assert_raw_equals_truth(conn, CHANNEL, truth, platform_truth.douyin) == len(truth)
