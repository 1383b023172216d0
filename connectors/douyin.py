"""Douyin shop (抖店) through `POST {base}/<method with dots as slashes>`.

- Signing: system parameters in the query string (`app_key, method, access_token, timestamp,
  v=2, sign_method, sign`), business parameters as the body `param_json`: compact JSON with keys
  sorted, no HTML escaping. `sign = hex(HMAC-SHA256(secret, secret + "app_key"+ak + "method"+m +
  "param_json"+pj + "timestamp"+ts + "v2" + secret))` (md5 of the same string for md5).
  `access_token` is not signed.
- Pull: `order.searchList` on `update_time` (unix seconds), pages from 0, size <= 100;
  `order.orderDetail` completes an order. Receiver fields are ciphertext (`encrypt_*`);
  `order.batchDecrypt` (<= 50 per call) gives the clear values.
- Errors: `{code, msg, sub_code, sub_msg}`, 10000 = success, 60000 = rate limited, sub-code
  `isv.access-token-expired` -> `token.refresh`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors import push_verify
from connectors.http import (
    PlatformError,
    RateLimited,
    ServerError,
    TokenExpired,
    Window,
    chunks,
    hint_seconds,
    json_body,
    raise_for_transport,
)
from connectors.marketplace import BaseClient, ceil_second, floor_second, from_unix, register
from connectors.push_verify import Credentials, Message, Rejected, Verified
from connectors.sign_json import sdk_json

DECRYPT_BATCH = 50


def param_json(params: Mapping[str, Any]) -> str:
    """Douyin's canonical business JSON as the official Go SDK writes it: keys sorted at every
    level, compact, no HTML escaping, Chinese unescaped, floats as Go writes them (2.0 -> `2`)."""
    return sdk_json(dict(params), sort_keys=True, go_style=True)


def sign(
    app_key: str,
    method: str,
    param_json_text: str,
    timestamp: str,
    secret: str,
    sign_method: str = "hmac-sha256",
) -> str:
    text = (
        f"{secret}app_key{app_key}method{method}param_json{param_json_text}"
        f"timestamp{timestamp}v2{secret}"
    )
    if sign_method == "md5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method != "hmac-sha256":
        raise ValueError(f"Douyin sign_method {sign_method!r}: use hmac-sha256 or md5")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@register
class DouyinClient(BaseClient):
    channel = "douyin"
    max_window = timedelta(days=7)
    max_page_size = 100
    sign_method = "hmac-sha256"

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        body = param_json(params)
        timestamp = str(int(datetime.now().timestamp()))
        query = {
            "app_key": self.secret("app_key"),
            "method": api,
            "timestamp": timestamp,
            "v": "2",
            "sign_method": self.sign_method,
            "sign": sign(
                self.secret("app_key"),
                api,
                body,
                timestamp,
                self.secret("app_secret"),
                self.sign_method,
            ),
        }
        if api != "token.refresh":
            query["access_token"] = self.token
        response = self.http.client.post(
            f"{self.base_url}/{api.replace('.', '/')}",
            params=query,
            content=body.encode(),
            headers={"content-type": "application/json", "x-open-no-old-err-code": "1"},
        )
        raise_for_transport(response)
        answer = json_body(response)
        if str(answer.get("code")) != "10000":
            raise _error(answer)
        return answer.get("data") or {}

    def refresh(self) -> None:
        data = self.invoke(
            "token.refresh",
            {"refresh_token": self.secret("refresh_token"), "grant_type": "refresh_token"},
        )
        if not data.get("access_token"):
            raise PlatformError("bad-refresh", "token refresh answered without an access_token")
        self.set_tokens(data["access_token"], data.get("refresh_token"))

    def order_no(self, order: dict[str, Any]) -> str:
        return str(order["order_id"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        return from_unix(order["update_time"])

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "update_time_start": int(floor_second(start).timestamp()),
            "update_time_end": int(ceil_second(end).timestamp()),
            "order_by": "update_time",
            "order_asc": True,
            "size": self.page_size,
        }

        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            data = self.call("order.searchList", {**base, "page": page}, window=window)
            return data.get("shop_order_list") or [], int(data.get("total") or 0)

        yield from self.numbered_pages(fetch, first=0, backwards=True, window=window)

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        data = self.call("order.orderDetail", {"shop_order_id": order_no}, window=window)
        order = data.get("shop_order_detail")
        if not order:
            raise PlatformError("not-found", f"order {order_no} not found")
        return order

    def complete(self, entries: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
        return self.map(lambda e: {**e, **self.detail(self.order_no(e), window)}, entries)

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        wanted: list[tuple[str, str, str]] = []  # (order, field, cipher)
        for order in orders:
            no = self.order_no(order)
            addr = order.get("post_addr") or {}
            for field, cipher in (
                ("name", order.get("encrypt_post_receiver")),
                ("phone", order.get("encrypt_post_tel")),
                ("address", addr.get("encrypt_detail")),
            ):
                if cipher:
                    wanted.append((no, field, cipher))
        plain: dict[str, str] = {}
        batches = list(chunks(wanted, DECRYPT_BATCH))
        for data in self.map(
            lambda batch: self.call(
                "order.batchDecrypt",
                {"cipher_infos": [{"auth_id": no, "cipher_text": c} for no, _, c in batch]},
                window=window,
            ),
            batches,
        ):
            for info in data.get("decrypt_infos") or []:
                if not info.get("err_no"):
                    plain[info["cipher_text"]] = info.get("decrypt_text")
        clear: dict[str, dict[str, str]] = {}
        for no, field, cipher in wanted:
            clear.setdefault(no, {"name": None, "phone": None, "address": None})[field] = plain.get(
                cipher
            )
        return clear


def _error(answer: dict[str, Any]) -> PlatformError:
    code = str(answer.get("code", "?"))
    sub_code = str(answer.get("sub_code") or "")
    message = " / ".join(str(x) for x in (answer.get("msg"), sub_code, answer.get("sub_msg")) if x)
    if code == "60000" or "rate" in sub_code or "limit" in sub_code:
        return RateLimited(code, message, retry_after=_hint(answer))
    if "access-token-expired" in sub_code or "access-token-no-existed" in sub_code:
        return TokenExpired(f"{code}/{sub_code}", message)
    if code in ("50001", "70000") or sub_code.startswith("isp."):
        return ServerError(code, message)
    return PlatformError(f"{code}/{sub_code}" if sub_code else code, message)


def _hint(answer: dict[str, Any]) -> float | None:
    return hint_seconds(answer.get("sub_msg"), answer.get("msg"))


# -- push messages ------------------------------------------------------------------------------


def verify_douyin(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Header `event-sign` = md5(app_key + raw body + app_secret); body `[{tag, msg_id, data}]`."""
    app_key = push_verify.secret(creds, "app_key")
    app_secret = push_verify.secret(creds, "app_secret")
    expected = push_verify.md5_hex(app_key.encode() + body + app_secret.encode())
    if not push_verify.same(headers.get("event-sign"), expected):
        raise Rejected(401, "event-sign does not match")
    items = push_verify.json_body(body)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Rejected(400, "body is not a JSON array of messages")
    messages = []
    for item in items:
        if str(item.get("tag")) == "0":  # verification ping: answer, store nothing
            continue
        data = push_verify.json_object(item.get("data") or {}, "data")
        nos = push_verify.order_nos(data.get("p_id")) or push_verify.order_nos(data.get("order_id"))
        sent = push_verify.as_time(
            item.get("timestamp") or data.get("update_time") or data.get("pay_time")
        )
        message_id = push_verify.optional_text(item.get("msg_id"))
        tag = push_verify.optional_text(item.get("tag"))
        messages.append(Message(message_id, tag, nos, sent, item))
    return Verified(messages, {"code": 0, "msg": "success"})
