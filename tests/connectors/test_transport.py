"""The connectors' HTTP transport (connectors/transport.py) against a real HTTP server: what it
puts on the wire (query parameters, form data, JSON as the platforms expect it, raw bytes,
headers), what it hands back (status, case-insensitive headers, text, JSON), and the failures
it turns into TransportError: a refused connection, a time-out, a URL the TLS rule refuses."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.http import IngestError, RetryPolicy, make_http_client
from connectors.transport import Client, TransportError, TransportTimeout
from kernel.tls import InsecureEndpoint, require_tls

FAST = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0)


def _echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        if request.query_params.get("sleep"):
            import asyncio

            await asyncio.sleep(float(request.query_params["sleep"]))
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "content_type": request.headers.get("content-type"),
                "user_agent": request.headers.get("user-agent"),
                "x_open": request.headers.get("x-open-no-old-err-code"),
                "body": body.decode("utf-8"),
            },
            headers={"X-Request-Id": "r-42"},
        )

    async def gbk(request: Request) -> Response:
        return Response("订单".encode("gbk"), media_type="text/plain; charset=gbk")

    return Starlette(routes=[Route("/echo", echo, methods=["GET", "POST"]), Route("/gbk", gbk)])


def _client(timeout: float = 2.0) -> Client:
    def check(url: str, method: str) -> None:
        require_tls(url, what=f"{method} request", fix="use https://")

    return Client(
        timeout=timeout,
        connect_timeout=timeout,
        ssl_context=ssl.create_default_context(),
        check_url=check,
    )


def test_form_posts_query_parameters_and_answers_as_the_platforms_send_them(serve) -> None:
    base = serve(_echo_app())
    client = _client()
    try:
        answer = client.post(
            f"{base}/echo?v=2",
            params={"access_token": "t 1", "ids": ["1", "2"]},
            data={"method": "taobao.trade.get", "fields": "tid,商品"},
        )
        echoed = answer.json()
        assert answer.status_code == 200 and answer.is_success
        assert answer.headers["x-request-id"] == answer.headers["X-REQUEST-ID"] == "r-42"
        assert echoed["method"] == "POST" and echoed["path"] == "/echo"
        # params join the URL's own query, a list as repeated keys
        assert echoed["query"] == "v=2&access_token=t+1&ids=1&ids=2"
        assert echoed["content_type"] == "application/x-www-form-urlencoded"
        assert echoed["body"] == "method=taobao.trade.get&fields=tid%2C%E5%95%86%E5%93%81"
        assert echoed["user_agent"] == "orderpulse-connectors/1"
        assert json.loads(answer.text) == echoed
    finally:
        client.close()
    assert client.is_closed


def test_json_goes_compact_and_unescaped_and_bytes_go_as_given(serve) -> None:
    base = serve(_echo_app())
    client = _client()
    try:
        echoed = client.post(f"{base}/echo", json={"tid": 7, "name": "张三"}).json()
        assert echoed["content_type"] == "application/json"
        assert echoed["body"] == '{"tid":7,"name":"张三"}'
        raw = b'{"order_id":"1"}'
        echoed = client.post(
            f"{base}/echo",
            content=raw,
            headers={"content-type": "application/json", "x-open-no-old-err-code": "1"},
        ).json()
        assert echoed["body"] == raw.decode() and echoed["x_open"] == "1"
        assert echoed["user_agent"] == "orderpulse-connectors/1"  # kept beside given headers
        got = client.get(f"{base}/echo", params={"page": 2}).json()
        assert (got["method"], got["query"], got["body"]) == ("GET", "page=2", "")
        assert client.get(f"{base}/gbk").text == "订单"  # the answer's own charset
    finally:
        client.close()


def test_no_answer_is_a_transport_error_and_a_slow_one_a_time_out(serve) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(timeout=0.3)
    try:
        with pytest.raises(TransportError) as refused:
            client.get(f"http://127.0.0.1:{port}/echo")
        assert not isinstance(refused.value, TransportTimeout)
        assert refused.value.code == "NewConnectionError"
        base = serve(_echo_app())
        with pytest.raises(TransportTimeout) as slow:
            client.get(f"{base}/echo", params={"sleep": 1.0})
        assert slow.value.code == "ReadTimeoutError"
    finally:
        client.close()
    # through the HTTP layer: retried, then an IngestError naming what happened
    with make_http_client(timeout=0.3, policy=FAST) as http, pytest.raises(IngestError) as caught:
        http.call(
            lambda: http.client.get(f"http://127.0.0.1:{port}/x"), channel="jd", what="detail"
        )
    assert caught.value.code == "NewConnectionError" and caught.value.attempts == 2
    assert http.stats("jd").server_errors == 1


def test_a_plain_http_url_off_this_machine_is_refused_before_it_is_sent() -> None:
    client = _client()
    try:
        with pytest.raises(InsecureEndpoint, match="POST request"):
            client.post("http://gw.example.com/router", data={"a": "1"})
    finally:
        client.close()
