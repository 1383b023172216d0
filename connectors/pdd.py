"""Pinduoduo through `POST {base}/api/router` with a JSON body.

- Signing: every parameter except `sign` (nulls dropped), sorted by key, concatenated `k+v`,
  `UPPER(md5(secret+s+secret))`; booleans sign as `true`/`false`, lists and objects as their JSON.
  `access_token` is signed. Numbers and nested JSON are written as PDD's SDKs write them
  (`JSON.stringify`: 2.0 -> `2`, Chinese unescaped). A null is never sent (the C# SDK drops
  it); the Node SDK's `"null"` is a string it sends and signs, so it verifies as any string.
- Pull: `pdd.order.number.list.increment.get` on `updated_at` (unix seconds), window <= 30 min,
  ending >= 3 min behind the platform's clock, page size <= 100, paged backwards; its orders are
  complete. `pdd.order.information.get` fetches one order.
- Receiver fields are ciphertext while the order awaits shipment (else "": nothing to decrypt,
  `_decrypted` then holds nulls); clear values come from `pdd.open.decrypt.batch` (<= 100 per
  call).
- Errors: `error_response{error_code,error_msg,sub_code,sub_msg}`; 70031/52101 = rate limited,
  52102/52103 = unavailable, 10019 = token expired -> `pdd.pop.auth.token.refresh`.
"""

from __future__ import annotations

import hashlib
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
from connectors.marketplace import BaseClient, ceil_second, floor_second, parse_beijing, register
from connectors.push_verify import Credentials, Message, Rejected, Verified
from connectors.sign_json import sdk_json

DECRYPT_BATCH = 100
# receiver_address is the street part; `address` repeats province, city and district first
CIPHER_FIELDS = (
    ("name", "receiver_name"),
    ("phone", "receiver_phone"),
    ("address", "receiver_address"),
)


def sign_text(value: Any) -> str:
    """A parameter's signed text as PDD's SDKs write it: booleans true/false, numbers and
    nested values the JavaScript way (2.0 -> `2`), keys in the order sent."""
    if isinstance(value, bool | int | float | dict | list):
        return sdk_json(value)
    return str(value)


def sign(params: Mapping[str, Any], secret: str) -> str:
    text = "".join(
        f"{k}{sign_text(params[k])}"
        for k in sorted(params)
        if k != "sign" and params[k] is not None
    )
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


@register
class PddClient(BaseClient):
    channel = "pdd"
    max_window = timedelta(minutes=30)
    max_page_size = 100
    settle = timedelta(minutes=3)

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        body: dict[str, Any] = {
            "type": api,
            "client_id": self.secret("client_id"),
            "timestamp": str(int(datetime.now(UTC).timestamp())),
            "data_type": "JSON",
            "version": "V1",
            **{k: v for k, v in params.items() if v is not None},
        }
        if api != "pdd.pop.auth.token.refresh":
            body["access_token"] = self.token
        body["sign"] = sign(body, self.secret("client_secret"))
        response = self.http.client.post(f"{self.base_url}/api/router", json=body)
        raise_for_transport(response)
        answer = json_body(response)
        if "error_response" in answer:
            raise _error(answer["error_response"])
        if len(answer) != 1:
            # one "<name>_response" key on success
            keys = [k for k in answer if k.endswith("_response")]
            if len(keys) != 1:
                raise ServerError("bad-response", f"{api}: unexpected answer shape")
            return answer[keys[0]]
        return next(iter(answer.values()))

    def refresh(self) -> None:
        data = self.invoke(
            "pdd.pop.auth.token.refresh", {"refresh_token": self.secret("refresh_token")}
        )
        if not data.get("access_token"):
            raise PlatformError("bad-refresh", "token refresh answered without an access_token")
        self.set_tokens(data["access_token"], data.get("refresh_token"))

    def order_no(self, order: dict[str, Any]) -> str:
        return str(order["order_sn"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        value = order["updated_at"]
        if isinstance(value, int | float) or str(value).isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        return parse_beijing(value)

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "start_updated_at": int(floor_second(start).timestamp()),
            "end_updated_at": int(ceil_second(end).timestamp()),
            "order_status": 5,
            "refund_status": 5,
            "page_size": self.page_size,
            "use_has_next": False,  # the total is what backwards paging needs
        }

        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.call(
                "pdd.order.number.list.increment.get", {**base, "page": page}, window=window
            )
            return answer.get("order_sn_list") or [], int(answer.get("total_count") or 0)

        yield from self.numbered_pages(fetch, first=1, backwards=True, window=window)

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        answer = self.call("pdd.order.information.get", {"order_sn": order_no}, window=window)
        order = answer.get("order_info")
        if not order:
            raise PlatformError("not-found", f"order {order_no} not found")
        return order

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        wanted = [
            (self.order_no(o), field, o[key])
            for o in orders
            for field, key in CIPHER_FIELDS
            if o.get(key)
        ]
        plain: dict[tuple[str, str], str] = {}
        batches = list(chunks(wanted, DECRYPT_BATCH))
        for answer in self.map(
            lambda batch: self.call(
                "pdd.open.decrypt.batch",
                {"data_list": [{"data_tag": no, "encrypted_data": c} for no, _, c in batch]},
                window=window,
            ),
            batches,
        ):
            for item in answer.get("data_decrypt_list") or []:
                if not item.get("error_code"):
                    plain[(str(item["data_tag"]), item["encrypted_data"])] = item.get(
                        "decrypted_data"
                    )
        clear: dict[str, dict[str, str]] = {}
        for no, field, cipher in wanted:
            clear.setdefault(no, {"name": None, "phone": None, "address": None})[field] = plain.get(
                (no, cipher)
            )
        return clear


def _error(err: dict[str, Any]) -> PlatformError:
    code = str(err.get("error_code", "?"))
    message = " / ".join(
        str(x) for x in (err.get("error_msg"), err.get("sub_code"), err.get("sub_msg")) if x
    )
    if code in ("70031", "52101"):
        return RateLimited(code, message, retry_after=hint_seconds(err.get("sub_msg")))
    if code == "10019":
        return TokenExpired(code, message)
    if code in ("52102", "52103"):
        return ServerError(code, message)
    return PlatformError(code, message)


# -- push messages ------------------------------------------------------------------------------


def verify_pdd(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """PMC message as a form, signed like a PDD request."""
    fields = push_verify.form(body)
    expected = sign(fields, push_verify.secret(creds, "client_secret"))
    if not push_verify.same(fields.get("sign"), expected):
        raise Rejected(401, "sign does not match")
    content = push_verify.form_json(fields, "content")
    sent = push_verify.as_time(fields.get("timestamp"))
    nos = push_verify.order_nos(content.get("tid"))
    message_id = push_verify.optional_text(fields.get("id"))
    return Verified([Message(message_id, fields.get("type"), nos, sent, fields)])
