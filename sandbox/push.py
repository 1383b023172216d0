"""Push: the gateways' change messages, signed each platform's way, POSTed to a webhook.

`Pusher(webhook_url, credentials)` posts to `<webhook_url>/<channel>` (the receiver in
`connectors/webhook.py` serves `POST /webhooks/<channel>`, so pass `http://host:port/webhooks`).
`credentials` is the `channels` part of sandbox.json. One message per order change; the message
id is stable per change (`<order no>-<change second>-<kind>`: a retried delivery carries the same
id, a new change a new one) and every message carries its send time. The change kind is the
order's latest change as the platform shows it: created, pay, ship, deliver, cancel, refund,
return, reject, or modified (an edit without a status change).

Formats (the receiver verifies these):
- **douyin**: JSON array body `[{"tag", "msg_id", "data": "<JSON string>", "timestamp"}]`;
  headers `app-id` (app_key) and `event-sign` = lowercase hex md5(app_key + raw body +
  app_secret). Tags: 100 created, 110 paid, 102 shipped, 103 completed, 106 cancelled/closed,
  200 after-sale (⚠ chosen), 105 modified. data: `{p_id, s_ids, shop_id, order_status,
  order_type, biz, create_time, update_time, pay_time}` (unix s). `timestamp` (send time, unix
  s) is a sandbox addition for replay windows.
- **youzan**: JSON body `{client_id, id, kdt_id, kdt_name, mode, msg, sign, status, test, type,
  version, timestamp}`, `msg` = urlencoded JSON `{tid, status, update_time}`, `sign` =
  md5(client_id + msg + client_secret); headers `Event-Sign` = md5(client_id + raw body +
  client_secret), `Event-Type`, `Client-Id`. Types: trade_TradeCreate, trade_TradePaid,
  trade_TradeSellerShip, trade_TradeSuccess, trade_TradeClose, trade_TradeBuyerRefund (⚠),
  trade_TradeMemoModified (modified). `timestamp` (unix s) is a sandbox addition.
- **taobao** (TMC message as an HTTP form, ⚠ the real channel is a WebSocket): fields `id,
  topic, content (JSON string {tid, oid, status, payment, seller_nick, type}), user_id,
  user_nick, pub_time, pub_app_key, timestamp ('yyyy-MM-dd HH:mm:ss' GMT+8), sign_method=md5,
  sign` with sign = UPPER(md5(app_secret + sorted key+value of every other field +
  app_secret)) (the TOP request signature). Topics taobao_trade_TradeCreate, TradeBuyerPay,
  TradeSellerShip, TradeSuccess, TradeClose, TradePartlyRefund, TradeChanged.
- **jd** (⚠ JOS pushes through JMQ; the sandbox uses an HTTP form): `msg_id, topic
  (jos_order_create | jos_order_pay | jos_order_ship | jos_order_finish | jos_order_cancel |
  jos_order_afs | jos_order_change), content (JSON {orderId, orderState, venderId, modified}),
  app_key, timestamp ('yyyy-MM-dd HH:mm:ss'), sign` = UPPER(md5(app_secret + sorted key+value
  + app_secret)).
- **pdd** (PMC message as an HTTP form, ⚠ the real channel is a WebSocket): `id, commandType
  (Common), time, sendTime (ms), type (pdd_trade_TradeCreate, pdd_trade_TradeConfirmed,
  pdd_trade_TradeSellerShip, pdd_trade_TradeSuccess, pdd_trade_TradeClose,
  pdd_refund_RefundCreated, pdd_trade_TradeModified), mallID, content (JSON {tid, mall_id,
  order_status, refund_status, updated_at}), client_id, timestamp (unix s), sign` = UPPER(md5(
  client_secret + sorted key+value + client_secret)) (the PDD request signature).
- **kuaishou** (⚠ no public facts; the request signing reused): form `msgId, eventId, event
  (kwaishop_order_create, kwaishop_order_paySuccess, kwaishop_order_delivering,
  kwaishop_order_received, kwaishop_order_closed, kwaishop_aftersales_create,
  kwaishop_order_update), bizId (oid), info (JSON {oid, status, updateTime}), createTime (ms),
  appkey, timestamp (ms), signMethod=MD5, sign` = lowercase md5 of the sorted `k=v` pairs
  joined with `&` plus `&signSecret=<sign_secret>`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from sandbox.gateways import douyin, jd, kuaishou, pdd, taobao, youzan
from sandbox.gateways.common import (
    OrderState,
    bj,
    now_utc,
    order_state,
    stable_number,
    unix_s,
    yuan,
)
from sandbox.gateways.store import epoch_s, version_times
from sandbox.model import Order

log = logging.getLogger(__name__)

DOUYIN_TAGS = {
    "created": "100", "pay": "110", "ship": "102", "deliver": "103", "cancel": "106",
    "refund": "106", "after_sale": "200", "modified": "105",
}  # fmt: skip
YOUZAN_TYPES = {
    "created": "trade_TradeCreate", "pay": "trade_TradePaid", "ship": "trade_TradeSellerShip",
    "deliver": "trade_TradeSuccess", "cancel": "trade_TradeClose", "refund": "trade_TradeClose",
    "after_sale": "trade_TradeBuyerRefund", "modified": "trade_TradeMemoModified",
}  # fmt: skip
TAOBAO_TOPICS = {
    "created": "TradeCreate", "pay": "TradeBuyerPay", "ship": "TradeSellerShip",
    "deliver": "TradeSuccess", "cancel": "TradeClose", "refund": "TradeClose",
    "after_sale": "TradePartlyRefund", "modified": "TradeChanged",
}  # fmt: skip
JD_TOPICS = {
    "created": "jos_order_create", "pay": "jos_order_pay", "ship": "jos_order_ship",
    "deliver": "jos_order_finish", "cancel": "jos_order_cancel", "refund": "jos_order_cancel",
    "after_sale": "jos_order_afs", "modified": "jos_order_change",
}  # fmt: skip
PDD_TYPES = {
    "created": "pdd_trade_TradeCreate", "pay": "pdd_trade_TradeConfirmed",
    "ship": "pdd_trade_TradeSellerShip", "deliver": "pdd_trade_TradeSuccess",
    "cancel": "pdd_trade_TradeClose", "refund": "pdd_trade_TradeClose",
    "after_sale": "pdd_refund_RefundCreated", "modified": "pdd_trade_TradeModified",
}  # fmt: skip
KUAISHOU_EVENTS = {
    "created": "kwaishop_order_create", "pay": "kwaishop_order_paySuccess",
    "ship": "kwaishop_order_delivering", "deliver": "kwaishop_order_received",
    "cancel": "kwaishop_order_closed", "refund": "kwaishop_order_closed",
    "after_sale": "kwaishop_aftersales_create", "modified": "kwaishop_order_update",
}  # fmt: skip


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
    """The order's latest change as the platform shows it."""
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


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _form(fields: Mapping[str, object]) -> bytes:
    return "&".join(
        f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in fields.items()
    ).encode()


FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


def build_message(
    channel: str, state: OrderState, creds: Mapping[str, str], sent: datetime
) -> Request:
    """The signed message announcing `state`'s latest change on `channel`."""
    o = state.order
    no = o.platform_order_no
    kind = change_kind(state)
    msg_id = f"{no}-{epoch_s(state.modified)}-{kind}"
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    if channel == "douyin":
        status = douyin.order_status(state)
        data = {
            "p_id": int(no) if no.isdigit() else no,
            "s_ids": [f"{no}{k}" for k in range(1, len(o.items) + 1)],
            "shop_id": o.shop_id,
            "order_status": status,
            "order_type": 0,
            "biz": 2,
            "create_time": unix_s(o.created_at),
            "update_time": unix_s(state.modified),
            "pay_time": unix_s(state.paid_at) or 0,
        }
        body = json.dumps(
            [
                {
                    "tag": DOUYIN_TAGS[kind],
                    "msg_id": msg_id,
                    "data": json.dumps(data, **compact),
                    "timestamp": unix_s(sent),
                }
            ],
            **compact,
        )
        sign = _md5(creds["app_key"] + body + creds["app_secret"])
        headers = {**JSON, "app-id": creds["app_key"], "event-sign": sign}
        return Request(msg_id, kind, body.encode(), headers)
    if channel == "youzan":
        status = youzan.trade_status(state)
        msg = quote(
            json.dumps({"tid": no, "status": status, "update_time": bj(state.modified)}, **compact)
        )
        message = {
            "client_id": creds["client_id"],
            "id": msg_id,
            "kdt_id": o.shop_id,
            "kdt_name": o.shop_id,
            "mode": 1,
            "msg": msg,
            "sign": _md5(creds["client_id"] + msg + creds["client_secret"]),
            "status": status,
            "test": False,
            "type": YOUZAN_TYPES[kind],
            "version": int(sent.timestamp() * 1000),
            "timestamp": unix_s(sent),
        }
        body = json.dumps(message, **compact)
        headers = {
            **JSON,
            "Event-Sign": _md5(creds["client_id"] + body + creds["client_secret"]),
            "Event-Type": YOUZAN_TYPES[kind],
            "Client-Id": creds["client_id"],
        }
        return Request(msg_id, kind, body.encode(), headers)
    if channel == "taobao":
        content = {
            "tid": int(no) if no.isdigit() else no,
            "oid": int(no) if no.isdigit() else no,
            "status": taobao.trade_status(state),
            "payment": yuan(o.paid_amount),
            "seller_nick": o.shop_id,
            "type": "fixed",
        }
        fields = {
            "id": msg_id,
            "topic": f"taobao_trade_{TAOBAO_TOPICS[kind]}",
            "content": json.dumps(content, **compact),
            "user_id": str(stable_number(o.shop_id, 9)),
            "user_nick": o.shop_id,
            "pub_time": bj(state.modified),
            "pub_app_key": creds["app_key"],
            "timestamp": bj(sent),
            "sign_method": "md5",
        }
        fields["sign"] = taobao.top_sign(fields, creds["app_secret"], "md5")
        return Request(msg_id, kind, _form(fields), dict(FORM))
    if channel == "jd":
        content = {
            "orderId": no,
            "orderState": jd.order_state_name(state),
            "venderId": o.shop_id,
            "modified": bj(state.modified),
        }
        fields = {
            "msg_id": msg_id,
            "topic": JD_TOPICS[kind],
            "content": json.dumps(content, **compact),
            "app_key": creds["app_key"],
            "timestamp": bj(sent),
        }
        fields["sign"] = jd.jd_sign(fields, creds["app_secret"])
        return Request(msg_id, kind, _form(fields), dict(FORM))
    if channel == "pdd":
        order_status, _, refund_status, _ = pdd.statuses(state)
        content = {
            "tid": no,
            "mall_id": o.shop_id,
            "order_status": order_status,
            "refund_status": refund_status,
            "updated_at": bj(state.modified),
        }
        sent_ms = int(sent.timestamp() * 1000)
        fields: dict[str, object] = {
            "id": msg_id,
            "commandType": "Common",
            "time": sent_ms,
            "sendTime": sent_ms,
            "type": PDD_TYPES[kind],
            "mallID": o.shop_id,
            "content": json.dumps(content, **compact),
            "client_id": creds["client_id"],
            "timestamp": unix_s(sent),
        }
        fields["sign"] = pdd.pdd_sign(fields, creds["client_secret"])
        return Request(msg_id, kind, _form(fields), dict(FORM))
    if channel == "kuaishou":
        info = {
            "oid": int(no) if no.isdigit() else no,
            "status": kuaishou.order_status(state),
            "updateTime": int(state.modified.timestamp()) * 1000,
        }
        sent_ms = str(int(sent.timestamp() * 1000))
        fields = {
            "msgId": msg_id,
            "eventId": msg_id,
            "event": KUAISHOU_EVENTS[kind],
            "bizId": no,
            "info": json.dumps(info, **compact),
            "createTime": sent_ms,
            "appkey": creds["app_key"],
            "timestamp": sent_ms,
            "signMethod": "MD5",
        }
        fields["sign"] = kuaishou.kuaishou_sign(
            {k: str(v) for k, v in fields.items()}, creds["sign_secret"]
        )
        return Request(msg_id, kind, _form(fields), dict(FORM))
    raise ValueError(f"{channel!r} has no push (marketplaces only)")


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
