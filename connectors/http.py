"""The HTTP layer every marketplace client shares: keep-alive clients (`connectors.transport`,
on urllib3; one per thread of a run), the retry policy (tenacity: exponential backoff with
jitter on rate limits, 5xx, timeouts and broken connections, honouring the platform's retry
hints, bounded attempts), one token refresh on expiry, retry counters for run metadata, and
errors that name the channel, the call, the window and the platform's code but never a secret.

Transport security: certificates are always verified (never turned off); plain
`http://` is refused for any host but this machine's loopback (where the sandbox serves), once
when an endpoint is configured (`require_tls`, naming the channel and the setting to fix) and
again on every request the client sends. A certificate that fails verification is not retried."""

from __future__ import annotations

import functools
import logging
import os
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TypeVar

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.transport import Client, Response, TransportError, TransportTimeout
from kernel import tls as kernel_tls
from kernel.tls import InsecureEndpoint  # noqa: F401  (raised by require_tls; callers catch it from here)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Window = tuple[datetime, datetime] | None


# -- errors -------------------------------------------------------------------------------


class PlatformError(Exception):
    """An error answer of a platform, raised by a client's response parser."""

    retryable = False

    def __init__(self, code: str | int, message: str = "", *, retry_after: float | None = None):
        super().__init__(f"{code}: {message}" if message else str(code))
        self.code = str(code)
        self.message = message
        self.retry_after = retry_after


class RateLimited(PlatformError):
    retryable = True


class ServerError(PlatformError):
    """A 5xx, an unparseable body or a platform-side transient failure."""

    retryable = True


class TokenExpired(PlatformError):
    """The access token expired or was revoked: refresh once, then retry."""

    token_generation: int | None = None


class IngestError(RuntimeError):
    """A call failed for good. Names channel, call, window and platform code; never a secret."""

    def __init__(
        self,
        channel: str,
        what: str,
        window: Window,
        code: str,
        message: str = "",
        *,
        attempts: int = 1,
    ):
        self.channel, self.what, self.window, self.code = channel, what, window, code
        self.attempts = attempts
        span = f" for window {window[0].isoformat()}..{window[1].isoformat()}" if window else ""
        detail = f": {message}" if message else ""
        text = (
            f"{channel}: {what} failed{span} after {attempts} attempt(s): "
            f"platform error {code}{detail}"
        )
        super().__init__(scrub(text))
        self._parts = (channel, what, window, code, scrub(message))  # rebuilt elsewhere

    def __reduce__(self):  # noqa: ANN204 (a pull in its own process sends it back whole)
        return (_rebuild_ingest_error, (type(self), self._parts, self.attempts))


def _rebuild_ingest_error(cls: type, parts: tuple, attempts: int) -> IngestError:
    return cls(*parts, attempts=attempts)


# -- secrets never reach logs ------------------------------------------------------------

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so `scrub` and the log filter can blank it out."""
    if value and len(value) >= 4:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _ScrubFilter(logging.Filter):
    """Blanks registered secrets in records (the transport logs full request URLs at INFO, and
    Youzan carries its token in the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FILTER = _ScrubFilter()
_SCRUBBED_LOGGERS = ("connectors.transport", "urllib3.connectionpool", __name__)


def _install_log_filter() -> None:
    for name in _SCRUBBED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# -- TLS only, except on loopback ---------------------------------------------------------


def require_tls(url: str, *, what: str, fix: str) -> str:
    """`url` if it is `https://`, or `http://` to a loopback host (the sandbox); otherwise
    `InsecureEndpoint` naming `what`, the URL (without its query, secrets blanked) and `fix`."""
    return kernel_tls.require_tls(url, what=what, fix=fix, shown=scrub)


def _refuse_plain_http(url: str, method: str) -> None:
    # a backstop for URLs built past `require_tls` (a new client, a URL put together later)
    require_tls(url, what=f"{method} request", fix="configure the endpoint with https://")


def _certificate_problem(err: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# -- retry policy and counters -------------------------------------------------------------


MAX_REFRESHES = 3  # per call


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # per call, first try included
    initial_wait: float = 0.25  # seconds, doubled each retry
    max_wait: float = 8.0  # cap of the exponential part
    jitter: float = 0.25
    max_hint: float = 60.0  # a platform's "ban lasts N s" is honoured up to this


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    refreshes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _transient(err: BaseException) -> bool:
    if isinstance(err, PlatformError):
        return err.retryable
    if _certificate_problem(err) is not None:
        return False  # an untrusted certificate stays untrusted: no retry
    return isinstance(err, TransportError)  # timeouts, resets, refused connections


def raise_for_transport(response: Response) -> None:
    """HTTP-level failures every platform shares: 429 and 5xx (with Retry-After)."""
    status = response.status_code
    if status == 429 or status >= 500:
        hint = _retry_after(response.headers.get("retry-after"))
        cls = RateLimited if status == 429 else ServerError
        raise cls(f"http-{status}", response.reason_phrase, retry_after=hint)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _trust_context() -> ssl.SSLContext:
    """httpx's own verifying context (SSL_CERT_FILE / SSL_CERT_DIR, else certifi), built once
    per trust store: building one reads the whole CA bundle, 18 % of the code server's CPU in
    live mode when every pushed batch built a client."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    stamp = os.stat(cafile).st_mtime_ns if cafile and os.path.exists(cafile) else None
    return _context_for(cafile, capath, stamp)


@functools.lru_cache(maxsize=8)
def _context_for(cafile: str | None, capath: str | None, stamp: int | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()


class Http:
    """One run's HTTP client, retry policy, worker pool for detail calls and counters."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        workers: int = 8,
    ):
        _install_log_filter()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._stats: dict[str, CallStats] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: dict[threading.Thread, Client] = {}

    @property
    def client(self) -> Client:
        """This thread's keep-alive client. One per thread, not one for all: the detail-call
        workers on one client queued on its connection pool's lock (httpcore takes it to hand
        out and to take back every connection) whenever another thread held the interpreter
        lock. With a CPU-bound thread beside them (switch interval 0.5 ms), a pull of 14,000
        orders loaded 348 orders/s on one client and 536 on a client per thread
        (bench/README.md)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(
                timeout=self.timeout,
                connect_timeout=min(self.timeout, 5.0),
                ssl_context=_trust_context(),
                check_url=_refuse_plain_http,
            )
            with self._lock:
                # a long-lived layer outlives threads: their clients close here
                ended = [t for t in self._clients if not t.is_alive()]
                for thread in ended:
                    self._clients.pop(thread).close()
                self._clients[threading.current_thread()] = client
            self._local.client = client
        return client

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counters -------------------------------------------------------------------------
    def stats(self, channel: str) -> CallStats:
        with self._lock:
            return self._stats.setdefault(channel, CallStats())

    def _count(self, channel: str, **increments: int) -> None:
        with self._lock:
            stats = self._stats.setdefault(channel, CallStats())
            for name, value in increments.items():
                setattr(stats, name, getattr(stats, name) + value)

    # -- concurrency for detail calls -------------------------------------------------------
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on the shared worker pool, results in input order."""
        items = list(items)
        if len(items) <= 1 or self.workers <= 1:
            return [fn(item) for item in items]
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="op-http")
        return list(self._pool.map(fn, items))

    # -- the call -------------------------------------------------------------------------
    def call(
        self,
        fn: Callable[[], T],
        *,
        channel: str,
        what: str,
        window: Window = None,
        refresh: Callable[[TokenExpired], bool | None] | None = None,
    ) -> T:
        """Run `fn` (one signed request) with retries; on token expiry refresh once and retry.

        `refresh(err)` exchanges the refresh token (returning False when another thread already
        did). A token that expires again after its refresh is refreshed again only if it is a
        newer token (`err.token_generation` moved on: it served other calls meanwhile); the same
        token failing twice, or more than `MAX_REFRESHES` in one call, is a clear failure.
        Raises `IngestError` when the call fails for good.
        """
        tried: set[int | None] = set()
        while True:
            try:
                return self._with_retries(fn, channel, what, window)
            except TokenExpired as expired:
                err = expired  # the name outlives the except block for the lambda below
                generation = err.token_generation
                if refresh is None or generation in tried or len(tried) >= MAX_REFRESHES:
                    raise IngestError(channel, what, window, err.code, err.message) from None
                tried.add(generation)
                log.info("%s: %s: access token expired (%s), refreshing", channel, what, err.code)
                try:
                    done = self._with_retries(
                        lambda err=err: refresh(err), channel, f"{what} token refresh", window
                    )
                except TokenExpired as failed:  # the refresh token itself was refused
                    raise IngestError(
                        channel, f"{what} token refresh", window, failed.code, failed.message
                    ) from None
                if done is not False:
                    self._count(channel, refreshes=1)

    def _with_retries(self, fn: Callable[[], T], channel: str, what: str, window: Window) -> T:
        policy = self.policy
        exponential = wait_exponential_jitter(
            multiplier=policy.initial_wait, max=policy.max_wait, jitter=policy.jitter
        )

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            hint = getattr(err, "retry_after", None) or 0.0
            return min(max(exponential(state), hint), policy.max_hint)

        def before_sleep(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            kind = _kind(err)
            self._count(channel, retries=1, **{kind: 1} if kind else {})
            log.warning(
                "%s: %s%s: %s, retry %d/%d in %.2fs",
                channel,
                what,
                window_text(window),
                _code(err),
                state.attempt_number,
                policy.attempts - 1,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait,
            retry=retry_if_exception(_transient),
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            self._count(channel, calls=1)
            return fn()

        try:
            return retrying(attempt)
        except TokenExpired:
            raise
        except PlatformError as err:
            raise IngestError(
                channel, what, window, err.code, err.message, attempts=attempts
            ) from None
        except TransportError as err:
            bad_cert = _certificate_problem(err)
            detail = (
                f"TLS certificate not trusted ({bad_cert.verify_message}); fix the server's "
                "certificate or add its CA to the trust store (SSL_CERT_FILE): verification "
                "stays on"
                if bad_cert is not None
                else ""
            )
            raise IngestError(channel, what, window, err.code, detail, attempts=attempts) from None


def _kind(err: BaseException | None) -> str | None:
    if isinstance(err, RateLimited):
        return "rate_limited"
    if isinstance(err, TransportTimeout):
        return "timeouts"
    if isinstance(err, ServerError | TransportError):
        return "server_errors"
    return None


def _code(err: BaseException | None) -> str:
    if isinstance(err, PlatformError):
        return f"platform error {err.code}"
    if isinstance(err, TransportError):
        return err.code
    return type(err).__name__ if err else "?"


def window_text(window: Window) -> str:
    return f" [{window[0].isoformat()}..{window[1].isoformat()}]" if window else ""


def make_http_client(
    timeout: float = 10.0,
    *,
    max_attempts: int | None = None,
    policy: RetryPolicy | None = None,
    workers: int = 8,
) -> Http:
    """The shared HTTP layer of one run (close it when the run ends)."""
    if policy is None:
        policy = RetryPolicy(attempts=max_attempts) if max_attempts else RetryPolicy()
    return Http(timeout=timeout, policy=policy, workers=workers)


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def json_body(response: Response) -> dict:
    """The answer as a JSON object; anything else (an HTML error page...) is a server error."""
    try:
        body = response.json()
    except ValueError:
        raise ServerError(f"http-{response.status_code}", "answer is not JSON") from None
    if not isinstance(body, dict):
        raise ServerError("bad-response", "answer is not a JSON object")
    return body


_HINT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:more\s+)?(?:s\b|sec|second|秒)", re.IGNORECASE)


def hint_seconds(*texts: object) -> float | None:
    """A retry hint written in an error message ("retry after 1 s", "请 1 秒后重试")."""
    for text in texts:
        if text and (match := _HINT.search(str(text))):
            return float(match.group(1))
    return None
