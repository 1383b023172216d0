"""The push receiver: an ASGI app (Starlette, served by uvicorn) with one route per marketplace,
`POST /webhooks/<channel>`.

Each request's signature is verified the platform's way by `verify_<channel>` in its connector
module (`connectors.push_verify.verifier`): Douyin `event-sign` = md5(app_key + body +
app_secret); Youzan `Event-Sign` = md5(client_id + body + client_secret) plus the body's legacy
`sign`; Taobao (TMC), JD, PDD (PMC) and Kuaishou messages arrive as forms signed like the
platform's own API requests (the sandbox's documented scheme, since their real push channels
are WebSocket/JMQ). Every message carries its send time.

A bad signature is refused with 401; a message sent longer than `max_age` ago, or whose id was
already stored (a replay), with 403; nothing of a refused request is stored. Accepted messages
land in `raw.webhook_events` (`connectors.webhook_store`) and the answer is immediate (Douyin
expects `{"code":0,"msg":"success"}`); a Dagster sensor then loads the named orders
(`connectors.push_load`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.channels_config import load_channels
from connectors.push_verify import Credentials, Rejected, verifier
from connectors.webhook_store import WebhookStore

log = logging.getLogger(__name__)

CredentialsSource = Credentials | Callable[[], Credentials]


def create_webhook_app(
    db_url: str,
    credentials_by_channel: Mapping[str, CredentialsSource],
    *,
    max_age: timedelta = timedelta(minutes=5),
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The receiver. `credentials_by_channel` values are credential dicts or zero-argument
    callables returning one (resolved on first use, e.g. once the sandbox wrote its file)."""
    store = WebhookStore(db_url)
    clock = clock or (lambda: datetime.now(UTC))
    known = load_channels().of_kind("marketplace", include_disabled=True)
    verifiers = {c: verifier(c) for c in credentials_by_channel if c in known}
    resolved: dict[str, Credentials] = {}

    def credentials(channel: str) -> Credentials:
        if channel not in resolved:
            source = credentials_by_channel[channel]
            resolved[channel] = source() if callable(source) else source
        return resolved[channel]

    async def receive(request: Request) -> Response:
        channel = request.path_params["channel"]
        if channel not in verifiers:
            return JSONResponse({"error": f"no receiver for {channel!r}"}, status_code=404)
        body = await request.body()
        try:
            verified = verifiers[channel](request.headers, body, credentials(channel))
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
