"""JD (JOS) through `{base}/routerjson` (form POST).

- Signing: business parameters packed into one JSON string `360buy_param_json`; every non-empty
  parameter sent except `sign` (`method, app_key, access_token, timestamp, v` and that string),
  sorted by key and concatenated `k+v`, signed `UPPER(md5(secret+s+secret))`. An empty value is
  skipped, not signed as its bare key (channels.md §2: the SDKs sign non-empty parameters; the
  sandbox does the same, so a push with an empty field verifies). `format` and
  `sign_method` are not sent (JD's own example omits them).
- Pull: `jingdong.pop.order.enSearch` on modified time (dateType 0), window <= 1 month, page size
  <= 100, page numbers against `orderTotal`. The list is partial; `jingdong.pop.order.enGet`
  completes each order. No `order_state` filter is sent: JOS's state list has no "awaiting
  payment" state and a filter would hide such orders.
- Receiver (`consigneeInfo` fullname/mobile/telephone/fullAddress) is ciphertext;
  `jingdong.jos.order.oaid.decrypt` (<= 20 per call, keyed by the order's `oaid`) gives clear
  values.
- Errors: system `error_response{code,zh_desc,en_desc}` (2 = App Call Limited, 19 = invalid or
  expired access_token -> `/oauth2/refresh_token`); business errors inside the method's answer as
  `apiResult{success: false, code, englishErr}`.
"""

from __future__ import annotations

import hashlib
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
    BEIJING,
    BaseClient,
    beijing_text,
    ceil_second,
    floor_second,
    parse_beijing,
    register,
)
from connectors.push_verify import Credentials, Message, Rejected, Verified

OPTIONAL_FIELDS = (
    "orderId,venderId,orderType,payType,orderState,orderStateRemark,orderTotalPrice,"
    "orderSellerPrice,orderPayment,freightPrice,sellerDiscount,balanceUsed,orderStartTime,"
    "paymentConfirmTime,modified,orderEndTime,pin,open_id_buyer,orderRemark,venderRemark,"
    "waybill,logisticsId,consigneeInfo,itemInfoList,couponDetailList,oaid,afsStatus,shipTime,"
    "customs"
)
DECRYPT_BATCH = 20


def sign(params: Mapping[str, str], secret: str) -> str:
    """JOS request signature over every non-empty parameter except `sign` (JOS's SDKs skip
    empty values; whitespace is signed as sent)."""
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


def param_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def jd_timestamp(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+0800"


@register
class JdClient(BaseClient):
    channel = "jd"
    max_window = timedelta(days=30)
    max_page_size = 100

    def invoke(self, api: str, params: dict[str, Any]) -> Any:
        query = {
            "method": api,
            "app_key": self.secret("app_key"),
            "access_token": self.token,
            "timestamp": jd_timestamp(datetime.now(UTC)),
            "v": "2.0",
            "360buy_param_json": param_json(params),
        }
        query["sign"] = sign(query, self.secret("app_secret"))
        response = self.http.client.post(f"{self.base_url}/routerjson", data=query)
        raise_for_transport(response)
        body = json_body(response)
        if "error_response" in body:
            raise _error(body["error_response"])
        key = api.replace(".", "_") + "_responce"  # sic: JOS spells it so
        answer = body.get(key) or body.get(api.replace(".", "_") + "_response")
        if answer is None:
            raise ServerError("bad-response", f"{api}: no {key} in the answer")
        code = str(answer.get("code", "0"))
        if code != "0":
            raise _error(answer)
        for part in answer.values():  # business errors ride inside the answer
            result = part.get("apiResult") if isinstance(part, dict) else None
            if result and result.get("success") is False:
                raise _business_error(result)
        return answer

    def refresh(self) -> None:
        response = self.http.client.post(
            f"{self.base_url}/oauth2/refresh_token",
            data={
                "app_key": self.secret("app_key"),
                "app_secret": self.secret("app_secret"),
                "grant_type": "refresh_token",
                "refresh_token": self.secret("refresh_token"),
            },
        )
        raise_for_transport(response)
        answer = json_body(response)
        if not answer.get("access_token"):
            raise PlatformError(str(answer.get("code", "bad-refresh")), str(answer.get("msg", "")))
        self.set_tokens(answer["access_token"], answer.get("refresh_token"))

    def order_no(self, order: dict[str, Any]) -> str:
        return str(order["orderId"])

    def modified_at(self, order: dict[str, Any]) -> datetime:
        return parse_beijing(order["modified"])

    def list_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        window = (start, end)
        base = {
            "start_date": beijing_text(floor_second(start)),
            "end_date": beijing_text(ceil_second(end)),
            "optional_fields": OPTIONAL_FIELDS,
            "page_size": str(self.page_size),
            "dateType": "0",  # modified time
        }

        def fetch(page: int) -> tuple[list[dict[str, Any]], int]:
            answer = self.call(
                "jingdong.pop.order.enSearch", {**base, "page": str(page)}, window=window
            )
            result = answer.get("searchorderinfo_result") or {}
            return result.get("orderInfoList") or [], int(result.get("orderTotal") or 0)

        yield from self.numbered_pages(fetch, first=1, backwards=True, window=window)

    def detail(self, order_no: str, window: Window = None) -> dict[str, Any]:
        answer = self.call(
            "jingdong.pop.order.enGet",
            {"order_id": order_no, "optional_fields": OPTIONAL_FIELDS},
            window=window,
        )
        result = answer.get("orderDetailInfo") or answer.get("result") or {}
        order = result.get("orderInfo") or result
        if not order:
            raise PlatformError("not-found", f"order {order_no} not found")
        return order

    def complete(self, entries: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
        return self.map(lambda e: {**e, **self.detail(self.order_no(e), window)}, entries)

    def decrypt(self, orders: list[dict[str, Any]], window: Window) -> dict[str, dict[str, str]]:
        infos = [{"orderId": self.order_no(o), "oaid": o["oaid"]} for o in orders if o.get("oaid")]
        consignees = {self.order_no(o): o.get("consigneeInfo") or {} for o in orders}
        clear: dict[str, dict[str, str]] = {}
        answers = self.map(
            lambda batch: self.call(
                "jingdong.jos.order.oaid.decrypt",
                {"getReceiverInfoListReqVO": {"orderInfos": batch, "scenesType": "1001"}},
                window=window,
            ),
            list(chunks(infos, DECRYPT_BATCH)),
        )
        for answer in answers:
            result = answer.get("returnType") or {}
            if str(result.get("code", "0")) != "0":
                raise PlatformError(str(result.get("code")), str(result.get("msg", "")))
            for r in result.get("data") or []:
                if str(r.get("code", "0")) != "0":
                    continue
                no = str(r.get("orderId"))
                clear[no] = {
                    "name": r.get("fullname"),
                    "phone": r.get("mobile") or r.get("telephone"),
                    "address": street(r.get("fullAddress"), consignees.get(no, {})),
                }
        return clear


def street(full: str | None, consignee: dict[str, Any]) -> str | None:
    """The street part of JD's full address (it repeats province, city and county first)."""
    if not full:
        return full
    rest = full
    for part in (consignee.get("province"), consignee.get("city"), consignee.get("county")):
        if part and rest.startswith(part):
            rest = rest[len(part) :]
    return rest


def _error(err: dict[str, Any]) -> PlatformError:
    code = str(err.get("code", "?"))
    message = str(err.get("en_desc") or err.get("zh_desc") or err.get("msg") or "")
    if code == "19":  # invalid or expired access_token
        return TokenExpired(code, message)
    if code == "2" or "limit" in message.lower():  # App Call Limited
        return RateLimited(code, message, retry_after=_hint(err))
    if code in ("1", "66", "67"):  # service unavailable / busy
        return ServerError(code, message)
    return PlatformError(code, message)


def _business_error(result: dict[str, Any]) -> PlatformError:
    return PlatformError(
        str(result.get("code") or result.get("numberCode")),
        str(result.get("englishErr") or result.get("chineseErr") or ""),
    )


def _hint(err: dict[str, Any]) -> float | None:
    return hint_seconds(err.get("en_desc"), err.get("zh_desc"))


# -- push messages ------------------------------------------------------------------------------


def verify_jd(headers: Mapping[str, str], body: bytes, creds: Credentials) -> Verified:
    """JOS message as a form, signed like a JOS request."""
    fields = push_verify.form(body)
    expected = sign(fields, push_verify.secret(creds, "app_secret"))
    if not push_verify.same(fields.get("sign"), expected):
        raise Rejected(401, "sign does not match")
    content = push_verify.form_json(fields, "content")
    sent = push_verify.as_time(fields.get("timestamp"))
    nos = push_verify.order_nos(content.get("orderId"))
    message_id = push_verify.optional_text(fields.get("msg_id"))
    return Verified([Message(message_id, fields.get("topic"), nos, sent, fields)])
