"""The push receiver refuses what it must, the way it must, over real HTTP and a real PostgreSQL:
oversize bodies (declared and streamed) with 413 before they are held in memory, malformed
messages with a 4xx JSON error (no traceback, no secret), messages without a readable send
time with 400; messages without an id are stored under distinct derived ids (a replay of one
is still refused); and a PostgreSQL restart does not cost the next push a 500.

Messages are built and signed by the sandbox (`sandbox.push`, an implementation of each
platform's push independent of the connectors)."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import psycopg
import pytest

from connectors.raw_schema import ensure_raw_tables
from connectors.webhook_app import (
    DEFAULT_MAX_BODY,
    MAX_BODY_ENV,
    create_webhook_app,
    max_body_from_env,
)
from kernel.database import EmbeddedServer, PgConn
from sandbox.gateways import GATEWAYS
from sandbox.gateways.common import form_body, md5_hex
from sandbox.gateways.samples import sample_orders
from sandbox.gateways.taobao import top_sign
from sandbox.push import build_message, latest_state
from tests.databases import drop_database, new_database

LIMIT = 4096
# the receiver's clock is pinned to NOW (a file run minutes after its import would otherwise
# send messages outside the 5-minute window)
NOW = datetime.now(UTC)
CHANNELS = list(GATEWAYS)
CREDS = {c: GATEWAYS[c].new_credentials() for c in CHANNELS}


@pytest.fixture(scope="module")
def db(pg: PgConn) -> Iterator[PgConn]:
    conn = new_database(pg, "wh_")
    with psycopg.connect(conn.url(), autocommit=True) as c:
        ensure_raw_tables(c, CHANNELS)
    yield conn
    drop_database(pg, conn)


@pytest.fixture()
def receiver(db: PgConn, serve) -> Iterator[tuple[str, psycopg.Connection]]:  # noqa: ANN001
    base = serve(create_webhook_app(db.url(), CREDS, max_body=LIMIT, clock=lambda: NOW))
    with psycopg.connect(db.url(), autocommit=True) as conn:
        conn.execute("truncate raw.webhook_events")
        yield f"{base}/webhooks", conn


def _stored(conn: psycopg.Connection) -> list[tuple[str, str, list[str]]]:
    return conn.execute(
        "select channel, message_id, order_nos from raw.webhook_events order by id"
    ).fetchall()


def _orders(channel: str, n: int = 3) -> list:  # noqa: ANN401
    return sample_orders(channel, n, end=NOW - timedelta(minutes=1), seed=11)


def _message(channel: str, index: int = 0, sent: datetime | None = None):  # noqa: ANN202
    order = _orders(channel)[index]
    return build_message(channel, latest_state(order, NOW), CREDS[channel], sent or NOW)


def _douyin(items: list[dict]) -> tuple[bytes, dict[str, str]]:
    """A Douyin push of `items`, signed the platform's way over the raw body."""
    creds = CREDS["douyin"]
    body = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    sign = md5_hex(creds["app_key"] + body + creds["app_secret"])
    return body.encode(), {"content-type": "application/json", "event-sign": sign}


def _taobao(fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A TMC message form with `fields`, signed the TOP way."""
    signed = {**fields, "sign": top_sign(fields, CREDS["taobao"]["app_secret"], "md5")}
    return form_body(signed), {"content-type": "application/x-www-form-urlencoded"}


def _tmc_fields(index: int) -> dict[str, str]:
    message = _message("taobao", index)
    return dict(parse_qsl(message.content.decode(), keep_blank_values=True))


def _raw_http(url: str, head: str, body_parts: list[bytes]) -> bytes:
    """Send a request by hand (headers exactly as given) and read the start of the answer."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nhost: {host}\r\n{head}\r\n".encode())
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:
                break  # the server stopped reading: expected past the limit
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


# -- body limit ---------------------------------------------------------------------------------


def test_declared_oversize_body_is_refused_before_it_is_read(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    # 100 MB announced, not one byte of it sent: the answer comes from the header alone
    answer = _raw_http(
        f"{url}/douyin", "content-type: application/json\r\ncontent-length: 104857600\r\n", []
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"limit" in answer
    # and over httpx, a just-too-large signed message
    message = _message("douyin")
    padded = message.content + b" " * (LIMIT + 1 - len(message.content))
    response = httpx.post(f"{url}/douyin", content=padded, headers=message.headers)
    assert response.status_code == 413 and "error" in response.json()
    assert _stored(conn) == []


def test_streamed_oversize_body_stops_being_read_at_the_limit(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    chunk = b"x" * 1024
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    head = "content-type: application/json\r\ntransfer-encoding: chunked\r\n"
    # LIMIT + 2 KiB sent, then the connection is held open: the answer must not wait for more
    answer = _raw_http(f"{url}/douyin", head, [framed] * (LIMIT // 1024 + 2))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    def stream() -> Iterator[bytes]:
        yield from [chunk] * (LIMIT // 1024 + 3)

    try:
        response = httpx.post(f"{url}/douyin", content=stream(), headers={"x": "1"})
        assert response.status_code == 413
    except httpx.TransportError:
        pass  # the server may close before the client finished writing: also a refusal
    assert _stored(conn) == []
    # a body under the limit still goes through
    message = _message("douyin")
    assert httpx.post(f"{url}/douyin", content=message.content, headers=message.headers).is_success


def test_body_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_BODY_ENV, raising=False)
    assert max_body_from_env() == DEFAULT_MAX_BODY == 1024 * 1024
    monkeypatch.setenv(MAX_BODY_ENV, "65536")
    assert max_body_from_env() == 65536
    monkeypatch.setenv(MAX_BODY_ENV, "1MB")
    with pytest.raises(ValueError, match=f"{MAX_BODY_ENV}='1MB'.*positive number of bytes"):
        max_body_from_env()


# -- malformed requests --------------------------------------------------------------------------

STAMP = int(NOW.timestamp())
MALFORMED_DOUYIN = {
    "not JSON": b"{not json",
    "not UTF-8": b"\xff\xfe[{}]",
    "an object, not an array": b'{"tag":"100"}',
    "array of numbers": b"[1,2,3]",
    "data not JSON": json.dumps([{"tag": "100", "msg_id": "m", "data": "{oops"}]).encode(),
    "data a list": json.dumps([{"tag": "100", "msg_id": "m", "data": "[1]"}]).encode(),
    "msg_id an object": json.dumps(
        [{"tag": "100", "msg_id": {"a": 1}, "data": "{}", "timestamp": STAMP}]
    ).encode(),
    "p_id an object": json.dumps(
        [{"tag": "100", "msg_id": "m", "data": '{"p_id": {"x": 1}}', "timestamp": STAMP}]
    ).encode(),
    "lone surrogate in the id": json.dumps(
        [{"tag": "100", "msg_id": "\ud800", "data": "{}", "timestamp": STAMP}]
    ).encode(),
    "NUL in a payload field": json.dumps(
        [{"tag": "100", "msg_id": "m", "note": "a\u0000b", "data": "{}", "timestamp": STAMP}]
    ).encode(),
    "NUL in a string": json.dumps(
        [{"tag": "100", "msg_id": "m\u0000", "data": "{}", "timestamp": STAMP}]
    ).encode(),
}


def test_malformed_signed_douyin_messages_get_a_clear_400(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    creds = CREDS["douyin"]
    with httpx.Client() as http:
        for case, body in MALFORMED_DOUYIN.items():
            # signed over the raw bytes, as the platform signs
            raw = creds["app_key"].encode() + body + creds["app_secret"].encode()
            headers = {"event-sign": hashlib.md5(raw).hexdigest()}
            response = http.post(f"{url}/douyin", content=body, headers=headers)
            assert response.status_code == 400, (case, response.text)
            assert set(response.json()) == {"error"} and response.json()["error"], case
            assert "Traceback" not in response.text and creds["app_secret"] not in response.text
    assert _stored(conn) == []


def test_a_refusal_quoting_a_lone_surrogate_is_still_a_clear_json_reply(receiver) -> None:  # noqa: ANN001
    """A stale message whose id holds a lone surrogate: the 403's reason quotes the id, which
    UTF-8 cannot encode; it is escaped (it crashed the reply, and a test worker, before)."""
    url, conn = receiver
    creds = CREDS["douyin"]
    stale = int((NOW - timedelta(hours=1)).timestamp())
    body = json.dumps([{"tag": "100", "msg_id": "\ud800", "data": "{}", "timestamp": stale}])
    raw = creds["app_key"].encode() + body.encode() + creds["app_secret"].encode()
    with httpx.Client() as http:
        response = http.post(
            f"{url}/douyin", content=body.encode(),
            headers={"event-sign": hashlib.md5(raw).hexdigest()},
        )  # fmt: skip
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "message \\ud800 is outside the time window"
    assert _stored(conn) == []


def test_malformed_forms_and_youzan_bodies_get_4xx_never_500(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    fields = _tmc_fields(0)
    broken_content, headers = _taobao({**fields, "content": "{not json"})
    yz = CREDS["youzan"]

    def youzan(body: bytes) -> tuple[bytes, dict[str, str]]:
        text = body.decode()
        return body, {"event-sign": md5_hex(yz["client_id"] + text + yz["client_secret"])}

    cases = {
        ("taobao", "content not JSON"): (broken_content, headers, 400),
        ("taobao", "not a form"): (b"%%%&&&==", {}, 400),
        ("taobao", "unsigned garbage"): (b"a=1&b=2", {}, 401),
        ("jd", "not UTF-8"): (b"msg_id=\xff", {}, 400),
        ("pdd", "empty body"): (b"", {}, 401),  # an empty form: no sign
        ("kuaishou", "binary"): (bytes(range(256)), {}, 400),
        ("youzan", "a JSON list"): (*youzan(b"[1,2]"), 400),
        ("youzan", "msg a number"): (*youzan(b'{"msg":5,"timestamp":1}'), 400),
        ("youzan", "msg not JSON"): (*youzan(b'{"msg":"%7Bbroken","id":"x"}'), 400),
        ("youzan", "no signature at all"): (b'{"msg":""}', {}, 401),
    }
    with httpx.Client() as http:
        for (channel, case), (body, hdrs, status) in cases.items():
            response = http.post(f"{url}/{channel}", content=body, headers=hdrs)
            assert response.status_code == status, (channel, case, response.text)
            assert set(response.json()) == {"error"}, (channel, case)
            secrets = [v for k, v in CREDS[channel].items() if "secret" in k]
            assert not any(s in response.text for s in secrets)
    assert _stored(conn) == []


# -- ids and timestamps --------------------------------------------------------------------------


def test_two_id_less_messages_do_not_collide_and_a_replay_is_still_refused(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    with httpx.Client() as http:
        # Douyin: msg_id dropped from two different messages
        bodies = []
        for index in (0, 1):
            (item,) = json.loads(_message("douyin", index).content)
            del item["msg_id"]
            bodies.append(_douyin([item]))
        for body, headers in bodies:
            response = http.post(f"{url}/douyin", content=body, headers=headers)
            assert response.status_code == 200, response.text
        # TMC: id empty in two different messages
        forms = [_taobao({**_tmc_fields(i), "id": ""}) for i in (0, 1)]
        for body, headers in forms:
            response = http.post(f"{url}/taobao", content=body, headers=headers)
            assert response.status_code == 200, response.text
        # the same id-less message again is a replay
        assert (
            http.post(f"{url}/douyin", content=bodies[0][0], headers=bodies[0][1]).status_code
            == 403
        )
        assert (
            http.post(f"{url}/taobao", content=forms[1][0], headers=forms[1][1]).status_code == 403
        )
    stored = _stored(conn)
    assert [c for c, _, _ in stored] == ["douyin", "douyin", "taobao", "taobao"]
    ids = [m for _, m, _ in stored]
    assert len(set(ids)) == 4 and all(m.startswith("sha256:") for m in ids)
    expected = [_orders(c)[i].platform_order_no for c in ("douyin", "taobao") for i in (0, 1)]
    assert [nos for _, _, nos in stored] == [[no] for no in expected]


def test_missing_or_unreadable_send_time_is_refused(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    fields = _tmc_fields(0)
    (item,) = json.loads(_message("douyin").content)
    data = json.loads(item["data"])
    no_time_data = json.dumps({k: v for k, v in data.items() if not k.endswith("_time")})
    cases = {
        "tmc without timestamp": (
            "taobao",
            _taobao({k: v for k, v in fields.items() if k != "timestamp"}),
        ),
        "tmc timestamp garbled": ("taobao", _taobao({**fields, "timestamp": "yesterday noon"})),
        "tmc timestamp overflowing": ("taobao", _taobao({**fields, "timestamp": "9" * 30})),
        "douyin without any time": (
            "douyin",
            _douyin(
                [{k: v for k, v in {**item, "data": no_time_data}.items() if k != "timestamp"}]
            ),
        ),
        "douyin time a word": ("douyin", _douyin([{**item, "timestamp": "soon"}])),
        "douyin time a boolean": ("douyin", _douyin([{**item, "timestamp": True}])),
    }
    with httpx.Client() as http:
        for case, (channel, (body, headers)) in cases.items():
            response = http.post(f"{url}/{channel}", content=body, headers=headers)
            assert response.status_code == 400, (case, response.text)
            assert "send time" in response.json()["error"], case
        # stale stays 403, fresh is accepted
        stale = _message("taobao", 1, sent=NOW - timedelta(hours=1))
        assert (
            http.post(f"{url}/taobao", content=stale.content, headers=stale.headers).status_code
            == 403
        )
        fresh = _message("taobao", 1)
        assert (
            http.post(f"{url}/taobao", content=fresh.content, headers=fresh.headers).status_code
            == 200
        )
    assert len(_stored(conn)) == 1


def test_concurrent_copies_of_one_message_are_stored_once(receiver) -> None:  # noqa: ANN001
    """The store's connections overlap: the unique key still lets exactly one copy in."""
    url, conn = receiver
    message = _message("kuaishou", 0)
    others = [_message("kuaishou", i) for i in (1, 2)]

    def post(m) -> int:  # noqa: ANN001
        return httpx.post(f"{url}/kuaishou", content=m.content, headers=m.headers).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, [message] * 8 + others))
    assert sorted(answers[:8]) == [200] + [403] * 7 and answers[8:] == [200, 200]
    assert sorted(m for _, m, _ in _stored(conn)) == sorted(
        m.message_id for m in [message, *others]
    )


# -- PostgreSQL restart --------------------------------------------------------------------------


def test_push_after_the_receivers_connection_was_killed_is_stored(receiver) -> None:  # noqa: ANN001
    url, conn = receiver
    with httpx.Client() as http:
        first = _message("pdd", 0)
        assert (
            http.post(f"{url}/pdd", content=first.content, headers=first.headers).status_code == 200
        )
        killed = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'orderpulse-webhook' and datname = current_database()"
        ).fetchall()
        assert killed and all(ok for (ok,) in killed)  # this receiver's (and earlier ones')
        second = _message("pdd", 1)
        answer = http.post(f"{url}/pdd", content=second.content, headers=second.headers)
        assert answer.status_code == 200, answer.text
    assert [m for _, m, _ in _stored(conn)] == [first.message_id, second.message_id]


@pytest.mark.slow
def test_postgresql_restart_then_push(tmp_path: Path, serve) -> None:  # noqa: ANN001
    """A server of its own (the session's is shared): pushes before, during and after a
    restart. During: 503 (the platform retries); after: stored, not 500."""
    server = EmbeddedServer(tmp_path / "pgdata")
    server.start()
    pg = server.conn("postgres")
    try:
        base = serve(create_webhook_app(pg.url(), CREDS, max_body=LIMIT, clock=lambda: NOW))
        url = f"{base}/webhooks"
        messages = [_message("jd", i) for i in range(3)]
        with httpx.Client() as http:

            def post(m) -> int:  # noqa: ANN001
                return http.post(f"{url}/jd", content=m.content, headers=m.headers).status_code

            assert post(messages[0]) == 200
            server.stop()
            down = http.post(f"{url}/jd", content=messages[1].content, headers=messages[1].headers)
            assert down.status_code == 503 and down.headers["retry-after"]
            server.start()
            assert post(messages[1]) == 200  # the platform's retry
            assert post(messages[2]) == 200
        with psycopg.connect(pg.url()) as conn:
            assert [m for _, m, _ in _stored(conn)] == [m.message_id for m in messages]
    finally:
        server.stop()
