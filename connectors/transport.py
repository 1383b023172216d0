"""One thread's keep-alive HTTP connections to the platforms, on urllib3.

The connectors' calls are many small signed POSTs (a detail call per order), made by eight
worker threads of the run process, where every microsecond of CPU is also time another thread
waits for the interpreter lock. httpx spent ~300 µs of CPU on such a call, urllib3 ~90 µs
(bench/README.md, "urllib3 under the connectors"). This is the part of httpx's API the
connectors use (`get`/`post` with params, form data, JSON or bytes; a response with
`status_code`, `headers`, `content`, `text`, `json()`), on a `urllib3.PoolManager`.

No retries and no redirects here: `connectors.http` retries (tenacity, with the platform's
hints) and a platform does not redirect an API call. Every request's URL passes `check_url`
first (the TLS-only rule). Failures to get an answer raise `TransportError` (a time-out:
`TransportTimeout`), chained to urllib3's error (and so to an `ssl` certificate error)."""

from __future__ import annotations

import json as jsonlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

log = logging.getLogger(__name__)
USER_AGENT = "orderpulse-connectors/1"
MAX_CONNECTIONS = 4  # per host and thread


class TransportError(Exception):
    """No answer: the connection was refused, reset or timed out, or TLS failed. `code`: what
    urllib3 called it (NewConnectionError, ReadTimeoutError, ProtocolError, SSLError...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class TransportTimeout(TransportError):
    """No answer within the time-out (connect or read)."""


@dataclass(frozen=True)
class Response:
    status_code: int
    reason_phrase: str
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type")), errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return jsonlib.loads(self.content)


def _charset(content_type: str | None) -> str:
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def _json_bytes(value: object) -> bytes:
    # as httpx sends it: compact, UTF-8 (the platforms' examples send Chinese unescaped)
    return jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class Client:
    """Keep-alive connections of one thread (up to MAX_CONNECTIONS per host), verified against
    `ssl_context`; `check_url(url, method)` raises for a URL that must not be called."""

    def __init__(
        self,
        *,
        timeout: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext,
        check_url: Callable[[str, str], None],
    ):
        self._check_url = check_url
        self._pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=MAX_CONNECTIONS,
            timeout=urllib3.Timeout(connect=connect_timeout, read=timeout),
            retries=False,
            ssl_context=ssl_context,
        )
        self.is_closed = False

    def get(self, url: str, **options: Any) -> Response:
        """`request("GET", url, ...)`."""
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> Response:
        """`request("POST", url, ...)`."""
        return self.request("POST", url, **options)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        json: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request, one answer (any status); `TransportError` when there is no answer."""
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        self._check_url(url, method)
        sent = {"user-agent": USER_AGENT, **(headers or {})}
        keys = {key.lower() for key in sent}
        body = content
        if data is not None:
            body = urlencode(data, doseq=True).encode()
            if "content-type" not in keys:
                sent["content-type"] = "application/x-www-form-urlencoded"
        elif json is not None:
            body = _json_bytes(json)
            if "content-type" not in keys:
                sent["content-type"] = "application/json"
        try:
            answer = self._pool.request(method, url, body=body, headers=sent, redirect=False)
        except Urllib3Error as err:
            # a refused connection is a NewConnectionError, which urllib3 derives from its
            # connect time-out: refused, not slow
            slow = isinstance(err, Urllib3Timeout) and not isinstance(err, NewConnectionError)
            kind = TransportTimeout if slow else TransportError
            raise kind(type(err).__name__, str(err)) from err
        response = Response(
            status_code=answer.status,
            reason_phrase=answer.reason or "",
            headers=answer.headers,
            content=answer.data,
        )
        log.info('HTTP Request: %s %s "%d %s"', method, url, answer.status, answer.reason)
        return response

    def close(self) -> None:
        self._pool.clear()
        self.is_closed = True
