"""Push: the gateways' change messages, signed each platform's way, POSTed to a webhook.

`Pusher(webhook_url, credentials)` posts to `<webhook_url>/<channel>` (the receiver in
`connectors/webhook_app.py` serves `POST /webhooks/<channel>`, so pass `http://host:port/webhooks`).
`credentials` is the `channels` part of sandbox.json. One message per order change; the message
id is stable per change (`<order no>-<change second>-<kind>`: a retried delivery carries the same
id, a new change a new one) and every message carries its send time. The change kind is the
order's latest change as the platform shows it (`CHANGE_KINDS`): created, pay, ship,
deliver, cancel, refund, after_sale (a return, a rejected delivery or a refund after shipping),
or modified (an edit without a status change).

The message of each platform (format, message types, signing) is built by its gateway module
(`build_push` in `sandbox/gateways/<platform>.py`, documented there; the receiver verifies
them); this module is platform-neutral: which change to announce, delivery and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from sandbox.gateways import GATEWAYS
from sandbox.gateways.common import CHANGE_KINDS, OrderState, now_utc, order_state
from sandbox.gateways.store import epoch_s, version_times
from sandbox.model import Order

log = logging.getLogger(__name__)
__all__ = [
    "CHANGE_KINDS", "Delivery", "Pusher", "Request", "build_message", "change_kind", "latest_state",
]  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """One pushed message and how the webhook answered."""

    channel: str
    platform_order_no: str
    message_id: str
    kind: str
    status_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Request:
    """A signed message ready to send."""

    message_id: str
    kind: str
    content: bytes
    headers: dict[str, str]


def change_kind(state: OrderState) -> str:
    """The order's latest change as the platform shows it (one of `CHANGE_KINDS`)."""
    o = state.order
    second = epoch_s(state.modified)
    if epoch_s(o.created_at) == second:
        return "created"
    happened = [
        at
        for at in (
            state.paid_at,
            state.shipped_at,
            state.delivered_at,
            state.cancelled_at,
            state.refunded_at,
            state.returned_at,
            state.rejected_at,
        )
        if at is not None and epoch_s(at) == second
    ]
    if not happened:
        return "modified"  # an edit, or a late update now visible
    if state.unified == "after_sale" and state.after_sale_at in happened:
        return "after_sale"
    for kind, at in (
        ("cancel", state.cancelled_at),
        ("refund", state.refunded_at),
        ("deliver", state.delivered_at),
        ("ship", state.shipped_at),
        ("pay", state.paid_at),
    ):
        if at in happened:
            return kind
    return "modified"


def latest_state(order: Order, now: datetime | None = None) -> OrderState | None:
    """`order` as its platform shows it at `now` (None: not created yet)."""
    now_s = epoch_s(now or now_utc())
    versions = [t for t in version_times(order) if t <= now_s]
    return order_state(order, versions[-1]) if versions else None


def build_message(
    channel: str, state: OrderState, creds: Mapping[str, str], sent: datetime
) -> Request:
    """The signed message announcing `state`'s latest change on `channel` (its gateway
    builds the platform's format)."""
    kind = change_kind(state)
    msg_id = f"{state.order.platform_order_no}-{epoch_s(state.modified)}-{kind}"
    gateway = GATEWAYS.get(channel)
    if gateway is None:
        raise ValueError(f"{channel!r} has no push (marketplaces only)")
    content, headers = gateway.build_push(state, kind, msg_id, creds, sent)
    return Request(msg_id, kind, content, headers)


class _Retryable(Exception):
    pass


class Pusher:
    """Posts change messages to `<webhook_url>/<channel>`; a failed delivery is retried twice
    with backoff, then reported (never raised: pushing is best-effort, pulls are the truth)."""

    def __init__(
        self,
        webhook_url: str,
        credentials: Mapping[str, Mapping[str, str]] | None = None,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.webhook_url = webhook_url.rstrip("/")
        self.credentials = {k: dict(v) for k, v in (credentials or {}).items()}
        self._client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def url(self, channel: str) -> str:
        return f"{self.webhook_url}/{channel}"

    def push(
        self, channel: str, orders: Iterable[Order], *, now: datetime | None = None
    ) -> list[Delivery]:
        """One message per order: its latest change as the platform shows it at `now`."""
        states = [s for s in (latest_state(o, now) for o in orders) if s is not None]
        return self.push_states(channel, states)

    def push_states(self, channel: str, states: Iterable[OrderState]) -> list[Delivery]:
        creds = self.credentials.get(channel)
        if creds is None:
            raise ValueError(f"no credentials for {channel!r}: pass sandbox.json's channels")
        out = []
        for state in states:
            request = build_message(channel, state, creds, now_utc())
            out.append(self._send(channel, state.order.platform_order_no, request))
        return out

    def _send(self, channel: str, order_no: str, request: Request) -> Delivery:
        @retry(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )
        def attempt() -> int:
            try:
                response = self._client.post(
                    self.url(channel), content=request.content, headers=request.headers
                )
            except httpx.HTTPError as err:
                raise _Retryable(type(err).__name__) from None
            if response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}")
            return response.status_code

        try:
            code = attempt()
        except _Retryable as err:
            log.warning("push %s %s failed: %s", channel, request.message_id, err)
            return Delivery(channel, order_no, request.message_id, request.kind, None, str(err))
        return Delivery(channel, order_no, request.message_id, request.kind, code)
