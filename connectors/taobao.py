"""Taobao/Tmall through the TOP router (`POST {base}/router/rest`, form-encoded).

- Signing: every parameter except `sign`, sorted by key, concatenated `k+v`; md5 wraps the
  string in the app secret (`UPPER(md5(secret+s+secret))`), hmac is `UPPER(HMAC-MD5(secret, s))`
  and hmac-sha256 the same with SHA-256. Blank values (empty or whitespace-only, by Java's
  `Character.isWhitespace`: U+3000 is blank, U+00A0 is not) are neither signed nor sent, as
  the official Java SDK does (`StringUtils.areNotEmpty` in `signTopRequest`, `TaobaoHashMap`).
- Pull: `taobao.trades.sold.increment.get` filters on modified time, window <= 1 day, page size
  <= 100, paged backwards from the last page (TOP's advice). Its trades are partial, so each one
  is completed with `taobao.trade.fullinfo.get`.
- Receiver name/mobile/phone/address are ciphertext; `taobao.top.oaid.decrypt` (<= 20 per call)
  gives the clear values.
- Errors: `error_response{code,msg,sub_code,sub_msg}`; 7 = App Call Limited ("ban will last N
  seconds"), 27 = invalid session -> `taobao.top.auth.token.refresh`, `isp.*` sub-codes are
  platform-side and retried.
"""

from __future__ import annotations

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
from connectors.marketplace import (
    BaseClient,
    beijing_text,
    ceil_second,
    floor_second,
    parse_beijing,
    register,
)
from connectors.push_verify import Credentials, Message, Rejected, Verified

LIST_FIELDS = "tid,tid_str,modified"
FULL_FIELDS = (
    "tid,tid_str,status,type,created,modified,pay_time,consign_time,end_time,"
    "payment,total_fee,post_fee,discount_fee,adjust_fee,received_payment,coupon_fee,"
    "alipay_point,buyer_nick,buyer_open_uid,seller_nick,shop_id,buyer_message,seller_memo,"
    "receiver_name,receiver_mobile,receiver_phone,receiver_address,receiver_state,"
    "receiver_city,receiver_district,receiver_town,receiver_zip,receiver_country,oaid,"
    "promotion_details,orders,buyer_ip,is_cross_border,customs,logistics_company,invoice_no"
)
DECRYPT_BATCH = 20


# Python's isspace() minus the characters Java's Character.isWhitespace does not count
_NOT_JAVA_WHITESPACE = frozenset("\u00a0\u2007\u202f\u0085")


def blank(value: str) -> bool:
    """Empty or whitespace-only the way the TOP Java SDK's `StringUtils.isEmpty` sees it."""
    return all(c.isspace() and c not in _NOT_JAVA_WHITESPACE for c in value)


def sign(params: Mapping[str, str], secret: str, method: str = "md5") -> str:
    """TOP request signature over every non-blank parameter except `sign`."""
    text = "".join(
        f"{k}{params[k]}" for k in sorted(params) if k != "sign" and not blank(params[k])
    )
    if method == "md5":
        return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()
    digest = hashlib.md5 if method == "hmac" else hashlib.sha256
    if method not in ("hmac", "hmac-sha256"):
        raise ValueError(f"TOP sign_method {method!r}: use md5, hmac or hmac-sha256")
    return hmac.new(secret.encode(), text.encode(), digest).hexdigest().upper()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


@register
class TaobaoClient(BaseClient):
    channel = "taobao"
    max_window = timedelta(days=1)
    max_page_size = 100
    token_field = "session"
    sign_method = "md5"

    # -- transport ------------------------------------------------------------------------
    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        form = {
            "method": api,
            "app_key": self.secret("app_key"),
            "timestamp": beijing_text(datetime.now(UTC)),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
            **{k: _text(v) for k, v in params.items() if v is not None},
        }
        form = {k: v for k, v in form.items() if not blank(v)}  # the Java SDK sends none
        if api != "taobao.top.auth.token.refresh":
            form["session"] = self.token
        form["sign"] = sign(form, self.secret("app_secret"), self.sign_method)
        response = self.http.client.post(f"{self.base_url}/router/rest", data=form)
        raise_for_transport(response)
        body = json_body(response)
        if "error_response" in body:
            raise _error(body["error_response"])
        key = api.removeprefix("taobao.").replace(".", "_") + "_response"
        if key not in body:
            raise ServerError("bad-response", f"{api}: no {key} in the answer")
        return body[key]

    def refresh(self) -> None:
        answer = self.invoke(
            "taobao.top.auth.token.refresh", {"refresh_token": self.secret("refresh_token")}
        )
        result = answer.get("token_result")
        token = json.loads(result) if isinstance(result, str) else result or {}
        access = token.get("access_token") or token.get("session")
        if not access:
            raise PlatformError("bad-refresh", "token refresh answered without an access_token")
        self.set_tokens(access, token.get("refresh_token"))

    # -- orders ---------------------------------------------------------------------------
    def order_no(self, order: dict[str, Any]) -> str:
        return str(order.get("tid_str") or order["tid"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        return parse_beijing(order["modified"])

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "fields": LIST_FIELDS,
            "start_modified": beijing_text(floor_second(start)),
            "end_modified": beijing_text(ceil_second(end)),
            "page_size": self.page_size,
            "use_has_next": "false",  # the total is what backwards paging needs
        }

        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.call(
                "taobao.trades.sold.increment.get", {**base, "page_no": page}, window=window
            )
            trades = (answer.get("trades") or {}).get("trade") or []
            return trades, int(answer.get("total_results") or 0)

        yield from self.numbered_pages(fetch, first=1, backwards=True, window=window)

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        answer = self.call(
            "taobao.trade.fullinfo.get", {"tid": order_no, "fields": FULL_FIELDS}, window=window
        )
        return answer["trade"]

    def complete(self, entries: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
        return self.map(lambda e: {**e, **self.detail(self.order_no(e), window)}, entries)

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        queries = [
            {"tid": self.order_no(o), "oaid": o.get("oaid"), "scene": "1005"}
            for o in orders
            if o.get("oaid")
        ]
        clear: dict[str, dict[str, str]] = {}
        batches = list(chunks(queries, DECRYPT_BATCH))
        for answer in self.map(
            lambda batch: self.call(
                "taobao.top.oaid.decrypt", {"query_list": batch}, window=window
            ),
            batches,
        ):
            receivers = (answer.get("receiver_list") or {}).get("receiver") or []
            for r in receivers:
                clear[str(r.get("tid"))] = {
                    "name": r.get("name"),
                    "phone": r.get("mobile") or r.get("phone"),
                    "address": r.get("address_detail") or r.get("address"),
                }
        return clear


def _error(err: dict[str, Any]) -> PlatformError:
    code = str(err.get("code", "?"))
    sub_code = str(err.get("sub_code") or "")
    message = " / ".join(
        str(x) for x in (err.get("msg"), err.get("sub_code"), err.get("sub_msg")) if x
    )
    if code == "7":
        return RateLimited(
            code, message, retry_after=hint_seconds(err.get("sub_msg"), err.get("msg"))
        )
    if code == "27" or "invalid-sessionkey" in sub_code or "session-expired" in sub_code:
        return TokenExpired(code, message)
    if sub_code.startswith("isp.") or code == "10":  # platform-side, not the request's fault
        return ServerError(code, message)
    return PlatformError(code, message)


# -- push messages ------------------------------------------------------------------------------


def verify_taobao(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """TMC message as a form, signed like a TOP request (md5 over sorted key+value)."""
    fields = push_verify.form(body)
    method = fields.get("sign_method") or "md5"
    try:
        expected = sign(fields, push_verify.secret(creds, "app_secret"), method)
    except ValueError:
        raise Rejected(401, f"unsupported sign_method {method!r}") from None
    if not push_verify.same(fields.get("sign"), expected):
        raise Rejected(401, "sign does not match")
    content = push_verify.form_json(fields, "content")
    sent = push_verify.as_time(fields.get("timestamp"))
    nos = push_verify.order_nos(content.get("tid"))
    message_id = push_verify.optional_text(fields.get("id"))
    return Verified([Message(message_id, fields.get("topic"), nos, sent, fields)])
