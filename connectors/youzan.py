"""Youzan through `POST {base}/api/{api}/{version}?access_token=...` with a JSON body.

- No request signing: the access token authenticates (it rides in the query string, which is
  why the HTTP layer scrubs registered secrets from the transport's request log).
- Pull: `youzan.trades.sold.get/4.0.4` with `start_update/end_update` (Beijing
  `yyyy-MM-dd HH:mm:ss`), page numbers from 1; orders are complete. Youzan advises querying
  >= 30 s after events, so windows end 30 s behind its clock.
- Receiver fields are ciphertext; `youzan.cloud.secret.decrypt.batch` gives the clear values.
- Errors: `{success: false, code, message}` or `gw_err_resp`; 10003 = token expired/invalid ->
  `POST /auth/token` with `authorize_type=refresh_token`; 20001 = rate limited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote

from connectors import push_verify
from connectors.http import (
    PlatformError,
    RateLimited,
    ServerError,
    TokenExpired,
    Window,
    chunks,
    json_body,
    raise_for_transport,
)
from connectors.marketplace import (
    BaseClient,
    beijing_text,
    ceil_second,
    floor_second,
    parse_beijing,
    register,
)
from connectors.push_verify import Credentials, Message, Rejected, Verified

VERSIONS = {
    "youzan.trades.sold.get": "4.0.4",
    "youzan.trade.get": "4.0.0",
    "youzan.cloud.secret.decrypt.batch": "1.0.0",
}
DECRYPT_BATCH = 100
CIPHER_FIELDS = (
    ("name", "receiver_name"),
    ("phone", "receiver_tel"),
    ("address", "delivery_address"),
)


@register
class YouzanClient(BaseClient):
    channel = "youzan"
    max_window = timedelta(days=1)
    max_page_size = 100
    settle = timedelta(seconds=30)

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        version = VERSIONS.get(api, "1.0.0")
        response = self.http.client.post(
            f"{self.base_url}/api/{api}/{version}",
            params={"access_token": self.token},
            json=params,
        )
        raise_for_transport(response)
        answer = json_body(response)
        if "gw_err_resp" in answer:
            raise _error(answer["gw_err_resp"])
        if answer.get("success") is False or "error_response" in answer:
            raise _error(answer.get("error_response") or answer)
        return answer.get("data") if "data" in answer else answer.get("response", answer)

    def refresh(self) -> None:
        response = self.http.client.post(
            f"{self.base_url}/auth/token",
            json={
                "authorize_type": "refresh_token",
                "client_id": self.secret("client_id"),
                "client_secret": self.secret("client_secret"),
                "refresh_token": self.secret("refresh_token"),
            },
        )
        raise_for_transport(response)
        answer = json_body(response)
        data = answer.get("data") or {}
        if not answer.get("success", True) or not data.get("access_token"):
            raise _error(answer)
        self.set_tokens(data["access_token"], data.get("refresh_token"))

    @staticmethod
    def _info(order: dict[str, Any]) -> dict[str, Any]:
        return (order.get("full_order_info") or order).get("order_info") or {}

    def order_no(self, order: dict[str, Any]) -> str:
        return str(self._info(order)["tid"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        return parse_beijing(self._info(order)["update_time"])

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "start_update": beijing_text(floor_second(start)),
            "end_update": beijing_text(ceil_second(end)),
            "page_size": self.page_size,
        }

        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            data = self.call("youzan.trades.sold.get", {**base, "page_no": page}, window=window)
            return data.get("full_order_info_list") or [], int(data.get("total_results") or 0)

        yield from self.numbered_pages(fetch, first=1, backwards=True, window=window)

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        data = self.call("youzan.trade.get", {"tid": order_no}, window=window)
        if not data:
            raise PlatformError("not-found", f"order {order_no} not found")
        return data if "full_order_info" in data else {"full_order_info": data}

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        wanted = []
        for order in orders:
            address = (order.get("full_order_info") or order).get("address_info") or {}
            for field, key in CIPHER_FIELDS:
                if address.get(key):
                    wanted.append((self.order_no(order), field, address[key]))
        plain: dict[str, str] = {}
        batches = list(chunks(wanted, DECRYPT_BATCH))
        for data in self.map(
            lambda batch: self.call(
                "youzan.cloud.secret.decrypt.batch",
                {"sources": [c for _, _, c in batch]},
                window=window,
            ),
            batches,
        ):
            if isinstance(data, dict):
                plain.update({k: v for k, v in data.items() if isinstance(v, str)})
        clear: dict[str, dict[str, str]] = {}
        for no, field, cipher in wanted:
            clear.setdefault(no, {"name": None, "phone": None, "address": None})[field] = plain.get(
                cipher
            )
        return clear


def _error(err: dict[str, Any]) -> PlatformError:
    code = str(err.get("code") or err.get("err_code") or "?")
    message = str(err.get("message") or err.get("err_msg") or err.get("msg") or "")
    if code in ("20001", "429"):
        hint = err.get("retry_after")
        return RateLimited(code, message, retry_after=float(hint) if hint is not None else None)
    if code in ("10003", "4201", "4203"):
        return TokenExpired(code, message)
    if code.startswith("5"):
        return ServerError(code, message)
    return PlatformError(code, message)


# -- push messages ------------------------------------------------------------------------------


def verify_youzan(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """Youzan's push check is the header `Event-Sign` = md5(client_id + raw body + client_secret),
    which covers the whole message: when present it decides alone (the body's legacy `sign`
    adds nothing; handlers in the wild check one or the other, and a message is not refused
    for lacking the second). Without the header the legacy body `sign` = md5(client_id + msg +
    client_secret) is checked instead; it covers `msg` only, so the message id is then derived
    from the signed `msg` and `type` (a replay under a fresh id or time is still a replay)."""
    client_id = push_verify.secret(creds, "client_id")
    client_secret = push_verify.secret(creds, "client_secret")
    header = headers.get("event-sign")
    if header is not None:
        expected = push_verify.md5_hex(client_id.encode() + body + client_secret.encode())
        if not push_verify.same(header, expected):
            raise Rejected(401, "Event-Sign does not match")
    message = push_verify.json_object(push_verify.json_body(body), "body")
    raw_msg = message.get("msg") or ""
    if not isinstance(raw_msg, str):
        raise Rejected(400, "msg is not a string")
    if header is None:
        legacy = push_verify.md5_hex((client_id + raw_msg + client_secret).encode())
        if not push_verify.same(message.get("sign"), legacy):
            raise Rejected(401, "no Event-Sign header and the body sign does not match")
        message_id = push_verify.derived_message_id(
            "youzan", {"msg": raw_msg, "type": message.get("type")}
        )
    else:
        message_id = push_verify.optional_text(message.get("id"))
    msg = push_verify.json_object(unquote(raw_msg) if raw_msg else "{}", "msg")
    sent = push_verify.as_time(message.get("timestamp") or message.get("version"))
    nos = push_verify.order_nos(msg.get("tid"))
    topic = push_verify.optional_text(message.get("type"))
    return Verified([Message(message_id, topic, nos, sent, message)], {"code": 0, "msg": "success"})
