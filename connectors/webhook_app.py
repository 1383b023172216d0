"""The push receiver: an ASGI app (Starlette, served by uvicorn) with one route per marketplace,
`POST /webhooks/<channel>`.

Each request's signature is verified the platform's way by `verify_<channel>` in its connector
module (`connectors.push_verify.verifier`): Douyin `event-sign` = md5(app_key + body +
app_secret); Youzan `Event-Sign` = md5(client_id + body + client_secret), or the body's legacy
`sign` when the header is absent; Taobao (TMC), JD, PDD (PMC) and Kuaishou messages arrive as
forms signed like the platform's own API requests (the sandbox's documented scheme, since their
real push channels are WebSocket/JMQ). Every message carries its send time.

What is refused, and how (a JSON `{"error": ...}` naming the problem, never a secret, never a
traceback; nothing of a refused request is stored):
- 413: a body over `max_body` bytes (default 1 MiB, env `ORDERPULSE_WEBHOOK_MAX_BODY_BYTES`):
  refused by its Content-Length before reading, and a streamed body stops being read at the
  limit, so an oversize body is never held in memory.
- 400: a malformed request (not UTF-8, not JSON or not a form, fields of the wrong type), or a
  message whose send time is missing or unreadable (the age check is never skipped).
- 401: a bad signature. 403: a message sent longer than `max_age` ago (either way), or whose id
  was already stored (a replay).
- 503: the event store is unreachable (PostgreSQL down): the platform retries later.

A message without an id gets a stable derived one (`push_verify.derived_message_id`: platform +
hash of the signed content): two different id-less messages never collide, and a replay of one
is still refused. Accepted messages land in `raw.webhook_events` (`connectors.webhook_store`)
and the answer is immediate (Douyin expects `{"code":0,"msg":"success"}`); a Dagster sensor then
loads the named orders (`connectors.push_load`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.channels_config import load_channels
from connectors.push_verify import Credentials, Message, Rejected, derived_message_id, verifier
from connectors.webhook_store import WebhookStore

log = logging.getLogger(__name__)

CredentialsSource = Credentials | Callable[[], Credentials]
DEFAULT_MAX_BODY = 1024 * 1024
MAX_BODY_ENV = "ORDERPULSE_WEBHOOK_MAX_BODY_BYTES"
# what a verifier may raise on a message its checks did not anticipate: still the sender's fault
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def max_body_from_env() -> int:
    """The body limit from `ORDERPULSE_WEBHOOK_MAX_BODY_BYTES` (default 1 MiB)."""
    raw = os.environ.get(MAX_BODY_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_BODY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{MAX_BODY_ENV}={raw!r}: set a positive number of bytes, e.g. 1048576")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes: by its declared length before any
    byte is read, or as soon as a streamed body grows past it (the rest is never read)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Rejected(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise Rejected(413, f"body of {int(declared)} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"body is over the {limit}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Rejected(400, "client disconnected before the body was complete") from None
    return b"".join(chunks)


def check_messages(
    channel: str, messages: list[Message], now: datetime, max_age: timedelta
) -> list[Message]:
    """Every message has a readable send time within `max_age` of `now` and an id (derived
    when it carries none); ids are unique within the request."""
    out = []
    for m in messages:
        if m.sent_at is None:
            raise Rejected(400, "message has no readable send time")
        if abs(now - m.sent_at) > max_age:
            raise Rejected(403, f"message {m.message_id} is outside the time window")
        if m.message_id is None:
            m = dataclasses.replace(m, message_id=derived_message_id(channel, m.payload))
        out.append(m)
    ids = [m.message_id for m in out]
    if len(set(ids)) != len(ids):
        raise Rejected(403, "message id repeated within one request")
    return out


def create_webhook_app(
    db_url: str,
    credentials_by_channel: Mapping[str, CredentialsSource],
    *,
    max_age: timedelta = timedelta(minutes=5),
    max_body: int | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The receiver. `credentials_by_channel` values are credential dicts or zero-argument
    callables returning one (resolved on first use, e.g. once the sandbox wrote its file).
    `max_body` (bytes) defaults to `ORDERPULSE_WEBHOOK_MAX_BODY_BYTES`, else 1 MiB."""
    limit = max_body if max_body is not None else max_body_from_env()
    store = WebhookStore(db_url)
    clock = clock or (lambda: datetime.now(UTC))
    known = load_channels().of_kind("marketplace", include_disabled=True)
    verifiers = {c: verifier(c) for c in credentials_by_channel if c in known}
    resolved: dict[str, Credentials] = {}

    def credentials(channel: str) -> Credentials:
        if channel not in resolved:
            source = credentials_by_channel[channel]
            try:
                resolved[channel] = source() if callable(source) else source
            except Exception as exc:  # a missing file or env var: say so without its content
                log.error("webhook %s: credentials unavailable (%s)", channel, type(exc).__name__)
                raise Rejected(503, "channel credentials are not available yet") from None
        return resolved[channel]

    async def receive(request: Request) -> Response:
        channel = request.path_params["channel"]
        if channel not in verifiers:
            return JSONResponse({"error": f"no receiver for {channel!r}"}, status_code=404)
        try:
            body = await read_body(request, limit)
            creds = credentials(channel)
            try:
                verified = verifiers[channel](request.headers, body, creds)
            except _MALFORMED as exc:
                log.info("webhook %s: malformed message (%s)", channel, type(exc).__name__)
                raise Rejected(400, "malformed message") from None
            messages = check_messages(channel, verified.messages, clock(), max_age)
            await store.store(channel, messages)
        except Rejected as err:
            # a reason may quote the sender's text (a message id): a lone surrogate in it
            # cannot be encoded as UTF-8, so it is escaped rather than failing the reply
            reason = err.reason.encode("utf-8", "backslashreplace").decode("utf-8")
            log.warning("webhook %s: refused (%d): %s", channel, err.status, reason)
            headers = {"retry-after": "5"} if err.status == 503 else None
            return JSONResponse({"error": reason}, status_code=err.status, headers=headers)
        except Exception:  # a bug of ours: the log has the traceback, the sender does not
            log.exception("webhook %s: internal error", channel)
            return JSONResponse({"error": "internal error"}, status_code=500)
        return JSONResponse(verified.reply)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "channels": sorted(credentials_by_channel)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await store.close()

    app = Starlette(
        routes=[
            Route("/webhooks/{channel}", receive, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.max_body = limit
    return app
