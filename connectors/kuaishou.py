"""Kuaishou shop through `{base}/<method with dots as slashes>` (form POST).

- Signing: system parameters (`appkey, method, version=1, access_token, timestamp` in ms,
  `signMethod`) plus `param` (the business JSON string), sorted by key, joined `k=v` with `&`,
  then `&signSecret=<signSecret>` appended (the sign secret, not the app secret). MD5 gives
  lowercase hex; HMAC_SHA256 (key = signSecret) gives Base64.
- Pull: `open.order.cursor.list` with `queryType` 2 (updated), `beginTime/endTime` in ms, window
  <= 7 days, `pageSize` <= 50, cursor paging from "" until the answer's cursor is "nomore". The
  list entries are complete orders; `open.order.detail` fetches one.
- Receiver fields are ciphertext (`orderAddress.encrypted*`); `open.order.decrypt.batch`
  (<= 100 per call, `errorCode` 1 = ok) gives the clear values.
- Errors: `{result != 1, error_msg, code, sub_code, sub_msg}` (codes are the sandbox's choice,
  channels.md has none): 21 rate limited, 28 access token expired/invalid -> the OAuth
  `/oauth2/refresh_token` endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
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

DECRYPT_BATCH = 100
NOMORE = "nomore"
CIPHER_FIELDS = (
    ("name", "encryptedConsignee"),
    ("phone", "encryptedMobile"),
    ("address", "encryptedAddress"),
)


def sign(params: Mapping[str, str], sign_secret: str, sign_method: str = "MD5") -> str:
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    text += f"&signSecret={sign_secret}"
    if sign_method == "MD5":
        return hashlib.md5(text.encode()).hexdigest()
    if sign_method != "HMAC_SHA256":
        raise ValueError(f"Kuaishou signMethod {sign_method!r}: use MD5 or HMAC_SHA256")
    mac = hmac.new(sign_secret.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@register
class KuaishouClient(BaseClient):
    channel = "kuaishou"
    max_window = timedelta(days=7)
    max_page_size = 50
    sign_method = "MD5"

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        form = {
            "appkey": self.secret("app_key"),
            "method": api,
            "version": "1",
            "timestamp": str(_ms(datetime.now(UTC))),
            "signMethod": self.sign_method,
            "param": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        }
        form["access_token"] = self.token
        form["sign"] = sign(form, self.secret("sign_secret"), self.sign_method)
        response = self.http.client.post(f"{self.base_url}/{api.replace('.', '/')}", data=form)
        raise_for_transport(response)
        answer = json_body(response)
        if str(answer.get("result")) != "1":
            raise _error(answer)
        return answer.get("data") if "data" in answer else answer

    def refresh(self) -> None:
        # OAuth endpoint, not a signed API call
        response = self.http.client.post(
            f"{self.base_url}/oauth2/refresh_token",
            data={
                "app_id": self.secret("app_key"),
                "app_secret": self.secret("app_secret"),
                "grant_type": "refresh_token",
                "refresh_token": self.secret("refresh_token"),
            },
        )
        raise_for_transport(response)
        answer = json_body(response)
        if str(answer.get("result")) != "1" or not answer.get("access_token"):
            raise _error(answer)
        self.set_tokens(answer["access_token"], answer.get("refresh_token"))

    def order_no(self, order: dict[str, Any]) -> str:
        return str(order["orderBaseInfo"]["oid"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        return from_unix(order["orderBaseInfo"]["updateTime"], millis=True)

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "queryType": 2,
            "beginTime": _ms(floor_second(start)),
            "endTime": _ms(ceil_second(end)),
            "pageSize": self.page_size,
            "orderViewStatus": 1,
            "sort": 2,  # ascending
        }
        cursor = ""
        while True:
            data = self.call("open.order.cursor.list", {**base, "cursor": cursor}, window=window)
            yield data.get("orderList") or []
            cursor = data.get("cursor") or NOMORE
            if cursor == NOMORE:
                return

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        data = self.call("open.order.detail", {"oid": int(order_no)}, window=window)
        order = (data or {}).get("orderDetail") or data
        if not order or "orderBaseInfo" not in order:
            raise PlatformError("not-found", f"order {order_no} not found")
        return order

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        wanted = [
            (self.order_no(o), field, (o.get("orderAddress") or {}).get(key))
            for o in orders
            for field, key in CIPHER_FIELDS
        ]
        wanted = [w for w in wanted if w[2]]
        plain: dict[str, str] = {}
        batches = list(chunks(wanted, DECRYPT_BATCH))
        for data in self.map(
            lambda batch: self.call(
                "open.order.decrypt.batch",
                {"batchDecryptList": [{"bizId": no, "encryptedData": c} for no, _, c in batch]},
                window=window,
            ),
            batches,
        ):
            for item in (data or {}).get("decryptList") or []:
                if item.get("errorCode") in (None, 1, "1") and item.get("decryptedData"):
                    plain[item["encryptedData"]] = item["decryptedData"]
        clear: dict[str, dict[str, str]] = {}
        for no, field, cipher in wanted:
            clear.setdefault(no, {"name": None, "phone": None, "address": None})[field] = plain.get(
                cipher
            )
        return clear


def _error(answer: dict[str, Any]) -> PlatformError:
    code = str(answer.get("code") or answer.get("result") or "?")
    sub_code = str(answer.get("sub_code") or "")
    message = " / ".join(
        str(x) for x in (answer.get("error_msg"), sub_code, answer.get("sub_msg")) if x
    )
    if code == "21" or "RATE_LIMIT" in sub_code.upper():
        hint = hint_seconds(answer.get("sub_msg"), answer.get("error_msg"))
        return RateLimited(code, message, retry_after=hint)
    if code == "28" or "ACCESS_TOKEN" in sub_code.upper():  # expired or invalid
        return TokenExpired(code, message)
    if code.startswith("5") or "unavailable" in message.lower():
        return ServerError(code, message)
    return PlatformError(code, message)


# -- push messages ------------------------------------------------------------------------------


def verify_kuaishou(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Message as a form, signed like a Kuaishou request (k=v&...&signSecret=)."""
    fields = push_verify.form(body)
    method = fields.get("signMethod") or "MD5"
    try:
        expected = sign(fields, push_verify.secret(creds, "sign_secret"), method)
    except ValueError:
        raise Rejected(401, f"unsupported signMethod {method!r}") from None
    if fields.get("sign") is None or not hmac.compare_digest(fields["sign"], expected):
        raise Rejected(401, "sign does not match")
    sent = push_verify.as_time(fields.get("timestamp"))
    nos = push_verify.order_nos(fields.get("bizId")) or push_verify.order_nos(
        push_verify.form_json(fields, "info").get("oid")
    )
    message_id = push_verify.optional_text(fields.get("msgId"))
    return Verified([Message(message_id, fields.get("event"), nos, sent, fields)])
