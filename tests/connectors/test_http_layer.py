"""The shared HTTP layer against a real HTTP server: backoff on 429/5xx/timeouts honouring the
retry hint, bounded attempts ending in an IngestError that names channel, call, window and code,
one token refresh, and credentials that never print."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.credentials import CredentialsError, load_credentials
from connectors.http import (
    IngestError,
    RetryPolicy,
    TokenExpired,
    json_body,
    make_http_client,
    raise_for_transport,
    register_secret,
    scrub,
)

FAST = RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.05, jitter=0.01, max_hint=0.3)
WINDOW = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))


def _flaky_app(script: list[tuple[int, dict]]) -> tuple[Starlette, list[float]]:
    """Answers the scripted (status, headers) in turn, then 200 forever; records call times."""
    import asyncio
    import time

    calls: list[float] = []

    async def endpoint(request: Request) -> Response:
        calls.append(time.monotonic())
        if request.query_params.get("sleep"):
            await asyncio.sleep(float(request.query_params["sleep"]))
            return JSONResponse({"ok": True})
        if len(calls) <= len(script):
            status, headers = script[len(calls) - 1]
            return Response("<html>busy</html>", status_code=status, headers=headers)
        return JSONResponse({"ok": True, "n": len(calls)})

    return Starlette(routes=[Route("/x", endpoint, methods=["GET"])]), calls


def _get(http, url: str):  # noqa: ANN001, ANN202
    def once() -> dict:
        response = http.client.get(url)
        raise_for_transport(response)
        return json_body(response)

    return once


def test_retries_rate_limits_and_5xx_then_succeeds(serve) -> None:
    app, calls = _flaky_app([(429, {"retry-after": "0.2"}), (503, {}), (502, {})])
    base = serve(app)
    with make_http_client(timeout=2, policy=FAST) as http:
        answer = http.call(_get(http, f"{base}/x"), channel="jd", what="list", window=WINDOW)
        stats = http.stats("jd")
    assert answer == {"ok": True, "n": 4}
    assert (stats.calls, stats.retries, stats.rate_limited, stats.server_errors) == (4, 3, 1, 2)
    # the 429's Retry-After (0.2 s) was honoured over the much shorter exponential wait
    assert calls[1] - calls[0] >= 0.19


def test_gives_up_after_bounded_attempts_naming_channel_window_and_code(serve) -> None:
    app, calls = _flaky_app([(503, {})] * 10)
    base = serve(app)
    with make_http_client(timeout=2, policy=FAST) as http, pytest.raises(IngestError) as caught:
        http.call(_get(http, f"{base}/x"), channel="pdd", what="list", window=WINDOW)
    err = caught.value
    assert len(calls) == FAST.attempts
    assert (err.channel, err.code, err.attempts) == ("pdd", "http-503", FAST.attempts)
    assert "pdd: list failed for window 2026-11-20T00:00:00+00:00..2026-11-21" in str(err)


def test_timeouts_are_retried(serve) -> None:
    app, calls = _flaky_app([])
    base = serve(app)
    slow_then_fast = iter([f"{base}/x?sleep=1.0", f"{base}/x"])
    with make_http_client(timeout=0.3, policy=FAST) as http:

        def once() -> dict:
            response = http.client.get(next(slow_then_fast))
            raise_for_transport(response)
            return json_body(response)

        assert http.call(once, channel="douyin", what="detail")["ok"] is True
        assert http.stats("douyin").timeouts == 1


def test_token_expiry_refreshes_once_then_retries() -> None:
    tokens = {"current": "old-token"}
    refreshes: list[str] = []

    def call() -> str:
        if tokens["current"] == "old-token":
            raise TokenExpired("27", "Invalid Session")
        return tokens["current"]

    def refresh(err: TokenExpired) -> None:
        refreshes.append(err.code)
        tokens["current"] = "new-token"

    with make_http_client(policy=FAST) as http:
        assert http.call(call, channel="taobao", what="list", refresh=refresh) == "new-token"
        assert refreshes == ["27"] and http.stats("taobao").refreshes == 1

        # a token that stays expired after the one refresh is a clear failure, not a loop
        def always_expired() -> str:
            raise TokenExpired("10019", "access_token expired")

        with pytest.raises(IngestError, match="platform error 10019"):
            http.call(always_expired, channel="pdd", what="list", refresh=lambda e: None)


def test_credentials_env_wins_and_secrets_never_print(tmp_path) -> None:
    sandbox = tmp_path / "sandbox.json"
    sandbox.write_text(
        '{"channels": {"jd": {"base_url": "http://127.0.0.1:1/", "app_key": "k1",'
        ' "app_secret": "sandbox-secret-123", "access_token": "tok-456"}}}'
    )
    creds = load_credentials("jd", sandbox, environ={"ORDERPULSE_JD_APP_SECRET": "env-secret-789"})
    assert creds["base_url"] == "http://127.0.0.1:1"
    assert creds["app_secret"].get_secret_value() == "env-secret-789"
    shown = f"{creds} {creds!r} {creds['access_token']}"
    assert "env-secret-789" not in shown and "tok-456" not in shown

    with pytest.raises(CredentialsError) as caught:
        load_credentials("kuaishou", sandbox, environ={})
    message = str(caught.value)
    for name in ("BASE_URL", "APP_KEY", "APP_SECRET", "SIGN_SECRET", "ACCESS_TOKEN"):
        assert f"ORDERPULSE_KUAISHOU_{name}" in message


def test_registered_secrets_are_scrubbed_from_logs_and_errors(serve, caplog) -> None:
    app, _ = _flaky_app([])
    base = serve(app)
    register_secret("query-token-abcdef")
    caplog.set_level(logging.DEBUG)
    with make_http_client(policy=FAST) as http:
        http.client.get(f"{base}/x", params={"access_token": "query-token-abcdef"})
    assert "query-token-abcdef" not in caplog.text
    assert "HTTP Request" in caplog.text  # the transport did log the request, scrubbed
    assert scrub("token=query-token-abcdef") == "token=***"
    err = IngestError("youzan", "list", None, "10003", "bad token query-token-abcdef")
    assert "query-token-abcdef" not in str(err)


def test_non_json_success_is_a_retryable_server_error(serve) -> None:
    async def html(request: Request) -> Response:
        return Response("<html>maintenance</html>", status_code=200)

    base = serve(Starlette(routes=[Route("/x", html)]))
    with make_http_client(policy=FAST) as http, pytest.raises(IngestError) as caught:
        http.call(_get(http, f"{base}/x"), channel="jd", what="list")
    assert caught.value.code == "http-200" and caught.value.attempts == FAST.attempts


def test_each_thread_calls_on_a_client_of_its_own_and_close_closes_them_all(serve) -> None:
    """The detail-call workers never share a connection pool (and its lock); a client whose
    thread ended is closed when the next thread's client is made, the rest by close()."""
    import threading

    app, calls = _flaky_app([])
    base = serve(app)
    with make_http_client(timeout=2, policy=FAST, workers=4) as http:
        mine = http.client
        assert http.client is mine  # the same thread keeps its client
        used = http.map(lambda _: (http.client, _get(http, f"{base}/x")()), range(40))
        clients = {id(client) for client, _ in used}
        assert mine not in [client for client, _ in used]
        assert 2 <= len(clients) <= 4  # the pool's workers, one client each
        assert [answer["ok"] for _, answer in used] == [True] * 40

        ended: list = []
        thread = threading.Thread(target=lambda: ended.append(http.client))
        thread.start()
        thread.join()
        assert not ended[0].is_closed
        newer: list = []
        thread = threading.Thread(target=lambda: newer.append(http.client))
        thread.start()
        thread.join()
        assert ended[0].is_closed and not newer[0].is_closed
        workers = [client for client, _ in used]
    assert mine.is_closed and newer[0].is_closed
    assert all(client.is_closed for client in workers)
    assert len(calls) == 40
