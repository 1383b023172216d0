"""The push receiver: an ASGI app (Starlette, served by uvicorn) with one route per platform,
`POST /webhooks/<channel>`.

Each request's signature is verified the platform's way (see `VERIFIERS`): Douyin `event-sign`
= md5(app_key + body + app_secret); Youzan `Event-Sign` = md5(client_id + body + client_secret)
plus the body's legacy `sign`; Taobao (TMC), JD, PDD (PMC) and Kuaishou messages arrive as
forms signed like the platform's own API requests (the sandbox's documented scheme, since
their real push channels are WebSocket/JMQ). Every message carries its send time.

A bad signature is refused with 401; a message sent longer than `max_age` ago, or whose id was
already stored (a replay), with 403; nothing of a refused request is stored. Accepted messages
land in `raw.webhook_events` (channel, message_id, topic, order_nos, payload) and the answer is
immediate (Douyin expects `{"code":0,"msg":"success"}`); a Dagster sensor reads
`pending_events`, fetches the named orders with `fetch_orders` and calls `mark_processed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

import psycopg
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors import jd, kuaishou, pdd, taobao
from connectors.marketplace import BEIJING, MarketplaceClient
from connectors.raw_loader import RawOrder

log = logging.getLogger(__name__)

Credentials = Mapping[str, Any]
CredentialsSource = Credentials | Callable[[], Credentials]


class Rejected(Exception):
    """A push request refused: 401 (signature) or 403 (stale or replayed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Message:
    """One verified change message."""

    message_id: str
    topic: str | None
    order_nos: list[str]
    sent_at: datetime | None
    payload: dict[str, Any]


@dataclass
class WebhookEvent:
    id: int
    channel: str
    message_id: str
    topic: str | None
    order_nos: list[str]
    payload: dict[str, Any]
    received_at: datetime
    processed_at: datetime | None = None


@dataclass
class Verified:
    messages: list[Message]
    reply: dict[str, Any] = field(default_factory=lambda: {"success": True})


def _secret(creds: Credentials, name: str) -> str:
    value = creds.get(name)
    if value is None:
        raise Rejected(401, f"no {name} configured for this channel")
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _md5(text: bytes) -> str:
    return hashlib.md5(text).hexdigest()


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.strip().lower(), b.lower())


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise Rejected(401, "body is not JSON") from None


def _as_time(value: Any) -> datetime | None:
    """Unix seconds / ms, ISO 8601 or Beijing `yyyy-MM-dd HH:mm:ss`."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def _nos(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


# -- per-platform verification -------------------------------------------------------------------


def verify_douyin(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Header `event-sign` = md5(app_key + raw body + app_secret); body `[{tag, msg_id, data}]`."""
    expected = _md5(
        (_secret(creds, "app_key") + body.decode() + _secret(creds, "app_secret")).encode()
    )
    if not _same(headers.get("event-sign"), expected):
        raise Rejected(401, "event-sign does not match")
    items = _json(body)
    if not isinstance(items, list):
        raise Rejected(401, "body is not a JSON array")
    messages = []
    for item in items:
        if str(item.get("tag")) == "0":  # verification ping: answer, store nothing
            continue
        data = item.get("data")
        data = json.loads(data) if isinstance(data, str) else data or {}
        nos = _nos(data.get("p_id")) or _nos(data.get("order_id"))
        sent = _as_time(item.get("timestamp") or data.get("update_time") or data.get("pay_time"))
        messages.append(Message(str(item.get("msg_id")), str(item.get("tag")), nos, sent, item))
    return Verified(messages, {"code": 0, "msg": "success"})


def verify_youzan(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Header `Event-Sign` = md5(client_id + raw body + client_secret); the body's own legacy
    `sign` = md5(client_id + msg + client_secret) must match too."""
    client_id, secret = _secret(creds, "client_id"), _secret(creds, "client_secret")
    if not _same(headers.get("event-sign"), _md5((client_id + body.decode() + secret).encode())):
        raise Rejected(401, "Event-Sign does not match")
    message = _json(body)
    raw_msg = message.get("msg") or ""
    if not _same(message.get("sign"), _md5((client_id + raw_msg + secret).encode())):
        raise Rejected(401, "message sign does not match")
    try:
        msg = json.loads(unquote(raw_msg)) if raw_msg else {}
    except ValueError:
        raise Rejected(401, "msg is not urlencoded JSON") from None
    sent = _as_time(message.get("timestamp"))
    return Verified(
        [Message(str(message.get("id")), message.get("type"), _nos(msg.get("tid")), sent, message)],
        {"code": 0, "msg": "success"},
    )


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise Rejected(401, "body is not a form") from None


def _content(fields: Mapping[str, str], key: str) -> dict[str, Any]:
    try:
        content = json.loads(fields.get(key) or "{}")
    except ValueError:
        raise Rejected(401, f"{key} is not JSON") from None
    return content if isinstance(content, dict) else {}


def verify_taobao(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """TMC message as a form, signed like a TOP request (md5 over sorted key+value)."""
    fields = _form(body)
    method = fields.get("sign_method") or "md5"
    try:
        expected = taobao.sign(fields, _secret(creds, "app_secret"), method)
    except ValueError:
        raise Rejected(401, f"unsupported sign_method {method!r}") from None
    if not _same(fields.get("sign"), expected):
        raise Rejected(401, "sign does not match")
    content = _content(fields, "content")
    sent = _as_time(fields.get("timestamp"))
    nos = _nos(content.get("tid"))
    return Verified([Message(fields.get("id", ""), fields.get("topic"), nos, sent, fields)])


def verify_jd(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """JOS message as a form, signed like a JOS request."""
    fields = _form(body)
    if not _same(fields.get("sign"), jd.sign(fields, _secret(creds, "app_secret"))):
        raise Rejected(401, "sign does not match")
    content = _content(fields, "content")
    sent = _as_time(fields.get("timestamp"))
    nos = _nos(content.get("orderId"))
    return Verified([Message(fields.get("msg_id", ""), fields.get("topic"), nos, sent, fields)])


def verify_pdd(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """PMC message as a form, signed like a PDD request."""
    fields = _form(body)
    if not _same(fields.get("sign"), pdd.sign(fields, _secret(creds, "client_secret"))):
        raise Rejected(401, "sign does not match")
    content = _content(fields, "content")
    sent = _as_time(fields.get("timestamp"))
    nos = _nos(content.get("tid"))
    return Verified([Message(fields.get("id", ""), fields.get("type"), nos, sent, fields)])


def verify_kuaishou(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Message as a form, signed like a Kuaishou request (k=v&...&signSecret=)."""
    fields = _form(body)
    method = fields.get("signMethod") or "MD5"
    try:
        expected = kuaishou.sign(fields, _secret(creds, "sign_secret"), method)
    except ValueError:
        raise Rejected(401, f"unsupported signMethod {method!r}") from None
    if fields.get("sign") is None or not hmac.compare_digest(fields["sign"], expected):
        raise Rejected(401, "sign does not match")
    sent = _as_time(fields.get("timestamp"))
    nos = _nos(fields.get("bizId")) or _nos(_content(fields, "info").get("oid"))
    return Verified([Message(fields.get("msgId", ""), fields.get("event"), nos, sent, fields)])


Verifier = Callable[[Mapping[str, str], bytes, Credentials], Verified]
VERIFIERS: dict[str, Verifier] = {
    "taobao": verify_taobao,
    "jd": verify_jd,
    "douyin": verify_douyin,
    "pdd": verify_pdd,
    "kuaishou": verify_kuaishou,
    "youzan": verify_youzan,
}


# -- the app ---------------------------------------------------------------------------------------

_INSERT = """
insert into raw.webhook_events (channel, message_id, topic, order_nos, payload)
values (%s, %s, %s, %s, %s)
on conflict (channel, message_id) do nothing
returning id
"""


class _Store:
    """One async connection, serialised by a lock (inserts are tiny; the receiver stays fast)."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.db_url, autocommit=True, application_name="orderpulse-webhook"
            )
            await self._conn.execute("select pg_advisory_lock(hashtext('orderpulse.raw_schema'))")
            try:
                from connectors.raw_schema import BOOKKEEPING_DDL

                await self._conn.execute(BOOKKEEPING_DDL.format())
            finally:
                await self._conn.execute(
                    "select pg_advisory_unlock(hashtext('orderpulse.raw_schema'))"
                )
        return self._conn

    async def store(self, channel: str, messages: Sequence[Message]) -> None:
        """Store all messages, or none when one of them was already stored (a replay)."""
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                for m in messages:
                    cur = await conn.execute(
                        _INSERT,
                        [
                            channel,
                            m.message_id,
                            m.topic,
                            m.order_nos,
                            json.dumps(m.payload, ensure_ascii=False, default=str),
                        ],
                    )
                    if await cur.fetchone() is None:
                        # raising inside the transaction block rolls back what it stored
                        raise Rejected(403, f"message id already received: {m.message_id}")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def create_webhook_app(
    db_url: str,
    credentials_by_channel: Mapping[str, CredentialsSource],
    *,
    max_age: timedelta = timedelta(minutes=5),
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The receiver. `credentials_by_channel` values are credential dicts or zero-argument
    callables returning one (resolved on first use, e.g. once the sandbox wrote its file)."""
    store = _Store(db_url)
    clock = clock or (lambda: datetime.now(UTC))
    resolved: dict[str, Credentials] = {}

    def credentials(channel: str) -> Credentials:
        if channel not in resolved:
            source = credentials_by_channel[channel]
            resolved[channel] = source() if callable(source) else source
        return resolved[channel]

    async def receive(request: Request) -> Response:
        channel = request.path_params["channel"]
        if channel not in VERIFIERS or channel not in credentials_by_channel:
            return JSONResponse({"error": f"no receiver for {channel!r}"}, status_code=404)
        body = await request.body()
        try:
            verified = VERIFIERS[channel](request.headers, body, credentials(channel))
            now = clock()
            for m in verified.messages:
                if m.sent_at is not None and abs(now - m.sent_at) > max_age:
                    raise Rejected(403, f"message {m.message_id} is outside the time window")
            ids = [m.message_id for m in verified.messages]
            if len(set(ids)) != len(ids):
                raise Rejected(403, "message id repeated within one request")
            await store.store(channel, verified.messages)
        except Rejected as err:
            log.warning("webhook %s: refused (%d): %s", channel, err.status, err.reason)
            return JSONResponse({"error": err.reason}, status_code=err.status)
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
    return app


# -- what the Dagster sensor calls ----------------------------------------------------------------


def pending_events(
    conn: psycopg.Connection, limit: int = 500, *, channel: str | None = None
) -> list[WebhookEvent]:
    """Stored, not yet processed events (of one channel, or all), oldest first."""
    rows = conn.execute(
        "select id, channel, message_id, topic, order_nos, payload, received_at, processed_at"
        " from raw.webhook_events where processed_at is null"
        " and (%(channel)s::text is null or channel = %(channel)s::text)"
        " order by id limit %(limit)s",
        {"channel": channel, "limit": limit},
    ).fetchall()
    return [WebhookEvent(*row) for row in rows]


def mark_processed(conn: psycopg.Connection, ids: Sequence[int]) -> int:
    """Mark events processed (after their orders were loaded); returns how many changed."""
    if not ids:
        return 0
    with conn.transaction():
        cur = conn.execute(
            "update raw.webhook_events set processed_at = now()"
            " where id = any(%s) and processed_at is null",
            [list(ids)],
        )
    return cur.rowcount


def fetch_orders(client: MarketplaceClient, order_nos: Sequence[str]) -> list[RawOrder]:
    """The pushed orders, fetched by detail calls, ready for `raw_loader.load_orders`."""
    return client.fetch_orders(order_nos) if order_nos else []
