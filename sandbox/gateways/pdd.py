"""Pinduoduo on loopback: `POST /api/router`, per channels.md §4.

Request: a JSON body (an urlencoded form works too) holding the system parameters `type` (API
name), `client_id`, `access_token`, `timestamp` (unix seconds; at most 10 min off ⚠ chosen),
`data_type=JSON`, `version=V1`, `sign` and the API's own parameters side by side.

Signing: drop null values and `sign`, sort keys (ordinal), concatenate key+value where a
non-scalar value is its compact JSON (no spaces, non-ASCII unescaped, keys in the order sent)
and a boolean is true/false; numbers, top-level or nested, are written as the SDKs'
JSON.stringify writes them (2.0 -> `2`, 0.5 -> `0.5`); sign = UPPER(hex(md5(secret + s +
secret))). `access_token` is signed. A JSON null is dropped (the C# SDK never sends one); the
Node SDK turns a null into the string "null", which is signed like any string.

APIs:
- `pdd.order.number.list.increment.get(start_updated_at, end_updated_at (unix s, at most 30
  min apart), order_status (1/2/3, 5 = all), refund_status (1..4, 5 = all), is_lucky_flag,
  page (from 1), page_size (max 100), use_has_next)`: orders whose updated_at (as of the
  request) lies in [start, end], ascending. -> `{"order_sn_increment_get_response":
  {"total_count", "has_next", "order_sn_list": [full orders], "request_id"}}`. The list is
  complete. The platform advises paging backwards and ending windows 3 min before now; the
  sandbox serves any page and any end <= now.
- `pdd.order.information.get(order_sn)` -> `{"order_info_get_response": {"order_info": {...}}}`.
- `pdd.open.decrypt.batch(data_list: [{data_tag: order_sn, encrypted_data}] (max 100))` ->
  `{"open_decrypt_batch_response": {"data_decrypt_list": [{data_tag, encrypted_data,
  decrypted_data, error_code, error_msg}]}}`.
- `pdd.pop.auth.token.refresh(refresh_token)` (signed, no access_token) ->
  `{"pop_auth_token_refresh_response": {access_token, expires_in, expires_at, refresh_token,
  refresh_token_expires_in, refresh_token_expires_at, owner_id, owner_name, scope}}`.
- Stock (⚠ sandbox convention in the PDD shape): `pdd.goods.sku.quantity.list.get(page (from
  1), page_size (max 100))` -> `{"goods_sku_quantity_list_get_response": {"total_count",
  "sku_list": [{outer_id (= sku), quantity (units on sale), reserve_quantity (units frozen),
  is_onsale (1 | 0)}]}}`; `pdd.goods.sku.reserve.update(sku_list: [{outer_id,
  reserve_quantity}] (max 50))`: the units frozen become these (absolute);
  `pdd.goods.sale.status.set(outer_ids: [...] (max 50), is_onsale: 0 | 1)`: pause / lift the
  sale. Both answer the SKUs' `sku_list`; an unknown outer_id: 50001, nothing changed.

Order fields: order_sn, mall_id (= shop id ⚠), open_id (= buyer id ⚠), order_status,
confirm_status, refund_status, after_sales_status, group_status, trade_type, created_time,
confirm_time, pay_time, shipping_time, receive_time, last_ship_time, updated_at (Beijing time
strings; unset times omitted), goods_amount, discount_amount (= platform_discount +
seller_discount), platform_discount, seller_discount, capital_free_discount, postage,
pay_amount (= goods_amount - discount_amount + postage), order_change_amount,
duo_duo_pay_reduction (yuan JSON numbers), buyer_memo, remark (seller note), receiver_name /
receiver_phone / receiver_address / address (ciphertext ONLY while the order is paid and
awaiting shipment, otherwise ""), receiver_name_mask / receiver_phone_mask /
receiver_address_mask / address_mask, province, city, town (= district), country (ISO),
customs{hs_code, declared_value (yuan), ...}, logistics_id, tracking_number (once shipped),
item_list[{goods_id, sku_id, goods_name, goods_spec, goods_count, goods_price, outer_id (= sku),
outer_goods_id}], promotion_detail_list[{promotion_id, promotion_name, promotion_type
(platform | shop), discount_amount}].

Status: confirm_status 0 = awaiting payment, 2 = cancelled (closed); order_status 1 awaiting
shipment, 2 shipped, 3 received; refund_status 1 none, 2 after-sale in progress (return or
rejected delivery), 4 refunded. Unified: confirm 0 -> awaiting_payment; confirm 2 -> closed;
refund 4 without shipping_time -> closed; refund 2/4 after shipping -> after_sale; else by
order_status. after_sales_status: 7 return in progress, 10 refunded, 3 rejected (0 none).

Errors `{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}`
(HTTP 200): 10000 invalid parameter (window over 30 min, page_size over 100, no such order),
10016 unknown client_id (⚠ chosen), 10019 access_token expired or invalid, 20004 signature
check failed, 20005 timestamp out of range (⚠ chosen), 20031 unknown type, 70031 calls too
frequent (rate-limit fault).

Push (PMC message as an HTTP form, ⚠ the real channel is a WebSocket): `id, commandType
(Common), time, sendTime (ms), type (pdd_trade_TradeCreate, pdd_trade_TradeConfirmed,
pdd_trade_TradeSellerShip, pdd_trade_TradeSuccess, pdd_trade_TradeClose,
pdd_refund_RefundCreated, pdd_trade_TradeModified), mallID, content (JSON {tid, mall_id,
order_status, refund_status, updated_at}), client_id, timestamp (unix s), sign` =
UPPER(md5(client_secret + sorted key+value + client_secret)) (the PDD request signature).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gateways.base import Gateway
from sandbox.gateways.common import (
    FORM_HEADERS,
    OrderState,
    PushBody,
    bj,
    compact_json,
    customs_fields,
    drop_none,
    form_body,
    json_response,
    mask_address,
    mask_name,
    mask_phone,
    split_coupons,
    stable_number,
    unix_s,
    yuan_num,
)
from sandbox.gateways.sdk_json import sdk_json
from sandbox.gateways.stock import StockRow

# change kind (common.CHANGE_KINDS) -> push message type
PUSH_TYPES = {
    "created": "pdd_trade_TradeCreate", "pay": "pdd_trade_TradeConfirmed",
    "ship": "pdd_trade_TradeSellerShip", "deliver": "pdd_trade_TradeSuccess",
    "cancel": "pdd_trade_TradeClose", "refund": "pdd_trade_TradeClose",
    "after_sale": "pdd_refund_RefundCreated", "modified": "pdd_trade_TradeModified",
}  # fmt: skip
INCREMENT = "pdd.order.number.list.increment.get"
INFORMATION = "pdd.order.information.get"
DECRYPT = "pdd.open.decrypt.batch"
REFRESH = "pdd.pop.auth.token.refresh"
STOCK_LIST = "pdd.goods.sku.quantity.list.get"
STOCK_RESERVE = "pdd.goods.sku.reserve.update"
SALE_STATUS = "pdd.goods.sale.status.set"
STOCK_TYPES = {  # API -> its answer's key
    STOCK_LIST: "goods_sku_quantity_list_get_response",
    STOCK_RESERVE: "goods_sku_reserve_update_response",
    SALE_STATUS: "goods_sale_status_set_response",
}
TYPES = (INCREMENT, INFORMATION, DECRYPT, REFRESH, *STOCK_TYPES)
MAX_STOCK_BATCH = 50
MAX_WINDOW = timedelta(minutes=30)
MAX_PAGE_SIZE = 100
MAX_SKEW = timedelta(minutes=10)
MAX_DECRYPT = 100
AFTER_SALES = {"return": (2, 7), "refund": (4, 10), "reject": (2, 3)}


def sign_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return sdk_json(value)  # booleans, numbers, objects and lists as JSON.stringify has them


def pdd_sign(params: dict[str, object], secret: str) -> str:
    joined = "".join(
        f"{k}{sign_value(v)}" for k, v in sorted(params.items()) if k != "sign" and v is not None
    )
    return hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()


def statuses(state: OrderState) -> tuple[int, int, int, int]:
    """(order_status, confirm_status, refund_status, after_sales_status)."""
    shipping = 3 if state.delivered_at else 2 if state.shipped else 1
    if not state.paid:
        return 1, (2 if state.cancelled_at else 0), 1, 0
    if state.cancelled_at:
        return shipping, 2, 4, 10
    if state.unified == "closed":  # refunded before shipping
        return 1, 1, 4, 10
    refund, after = AFTER_SALES.get(state.after_sale or "", (1, 0))
    return shipping, 1, refund, after


class PddError(Exception):
    def __init__(self, code: int, msg: str, sub_msg: str = ""):
        super().__init__(msg)
        self.body = {
            "error_code": code,
            "error_msg": msg,
            "sub_code": str(code),
            "sub_msg": sub_msg,
        }


def _param_error(sub_msg: str) -> PddError:
    return PddError(10000, "参数错误", sub_msg)


class PddGateway(Gateway):
    channel = "pdd"
    # the world's facts about pdd (see Gateway)
    share = 0.13
    shops = (("830012745", "橙意拼多多品牌店"),)
    push_types = PUSH_TYPES
    seal_prefix = "~AgAAAA"
    seal_suffix = "~0~"

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (order_sn: yymmdd-15 digits, 180227-3947…)."""
        return f"{t:%y%m%d}-{s % 1_000_000:06d}{i:09d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "client_id": secrets.token_hex(16),
            "client_secret": secrets.token_hex(20),
            "access_token": secrets.token_hex(16),
            "refresh_token": secrets.token_hex(16),
        }

    @property
    def secret(self) -> str:
        return self.credentials["client_secret"]

    def routes(self) -> list[Route]:
        return [Route("/api/router", self.handle, methods=["POST"])]

    def error(self, err: PddError) -> Response:
        return json_response({"error_response": {**err.body, "request_id": _request_id()}})

    def rate_limited(self) -> Response:
        return self.error(PddError(70031, "调用过于频繁", "请 1 秒后重试"))

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
                p: dict = dict(parse_qsl(body.decode(), keep_blank_values=True))
            else:
                p = json.loads(body or b"{}")
                if not isinstance(p, dict):
                    raise ValueError
        except ValueError:
            return self.error(_param_error("请求体必须是 JSON 对象"))
        try:
            api = self.authenticate(p)
            if api == REFRESH:
                return json_response(self.refresh(p))
            check = self.tokens.check(p.get("access_token"))
            if check != "ok":
                raise PddError(
                    10019, "access_token已过期" if check == "expired" else "access_token无效"
                )
            self.tokens.use(p["access_token"])
            faulted = await self.fault_gate()
            if faulted is not None:
                return faulted
            now_s = self.now_s()
            if api == INCREMENT:
                return json_response(self.increment(p, now_s))
            if api == INFORMATION:
                return json_response(self.information(p, now_s))
            if api in STOCK_TYPES:
                return json_response({STOCK_TYPES[api]: self.stock_call(api, p)})
            return json_response(self.decrypt(p, now_s))
        except PddError as err:
            return self.error(err)

    def authenticate(self, p: dict) -> str:
        for name in ("type", "client_id", "timestamp", "sign"):
            if p.get(name) in (None, ""):
                raise _param_error(f"缺少公共参数 {name}")
        if p["client_id"] != self.credentials["client_id"]:
            raise PddError(10016, "client_id 不存在")
        try:
            sent = int(str(p["timestamp"]))
        except ValueError:
            raise PddError(20005, "timestamp 非法", "unix 秒") from None
        if abs(sent - time.time()) > MAX_SKEW.total_seconds():
            raise PddError(20005, "timestamp 非法", "与服务器时间相差超过 10 分钟")
        if not hmac.compare_digest(str(p["sign"]).upper(), pdd_sign(p, self.secret)):
            raise PddError(20004, "签名验证失败")
        if p["type"] not in TYPES:
            raise PddError(20031, "接口不存在", str(p["type"]))
        return p["type"]

    # -- APIs ----------------------------------------------------------------------------------
    def stock_call(self, api: str, p: dict) -> dict:
        """The stock APIs (see the module docstring)."""
        if api == STOCK_LIST:
            page = _int(p, "page", 1)
            size = _int(p, "page_size", 100)
            if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
                raise _param_error("page 从 1 开始；page_size 取值 1..100")
            rows, total = self.stock.page((page - 1) * size, size)
            return {
                "total_count": total,
                "sku_list": _stock_list(rows),
                "request_id": _request_id(),
            }
        try:
            if api == STOCK_RESERVE:
                entries = _json_arg(p["sku_list"])
                changes = {str(e["outer_id"]): int(e["reserve_quantity"]) for e in entries}
            else:
                onsale = int(p["is_onsale"])
                if onsale not in (0, 1):
                    raise ValueError
                changes = {str(x): onsale == 0 for x in _json_arg(p["outer_ids"])}
        except (KeyError, TypeError, ValueError):
            raise _param_error("sku_list / outer_ids / is_onsale 非法") from None
        if not changes or len(changes) > MAX_STOCK_BATCH:
            raise _param_error(f"每次 1..{MAX_STOCK_BATCH} 个 SKU")
        try:
            if api == STOCK_RESERVE:
                rows = self.stock.set_withheld(changes)
            else:
                rows = self.stock.set_paused(changes)
        except KeyError as err:
            raise PddError(50001, "商品不存在", str(err.args[0])) from None
        return {"sku_list": _stock_list(rows), "request_id": _request_id()}

    def increment(self, p: dict, now_s: int) -> dict:
        start = _int(p, "start_updated_at", None)
        end = _int(p, "end_updated_at", None)
        if end < start:
            raise _param_error("start_updated_at 不能晚于 end_updated_at")
        if end - start > MAX_WINDOW.total_seconds():
            raise _param_error("start_updated_at 与 end_updated_at 间隔不能超过 30 分钟")
        page = _int(p, "page", 1)
        size = _int(p, "page_size", 100)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            raise _param_error("page 从 1 开始；page_size 取值 1..100")
        want_order = _int(p, "order_status", 5)
        want_refund = _int(p, "refund_status", 5)

        def window() -> np.ndarray:
            idx, _ = self.store.modified_window(start, end, now_s)
            if want_order == 5 and want_refund == 5:
                return idx
            keep = []
            for i in idx.tolist():
                order_status, _, refund_status, _ = statuses(self.state_at(i, now_s))
                if want_order in (5, order_status) and want_refund in (5, refund_status):
                    keep.append(i)
            return np.asarray(keep, dtype=np.int64)

        key = (INCREMENT, start, end, want_order, want_refund)
        rows, total = self.paged(key, window, (page - 1) * size, size, now_s)
        body = {
            "total_count": total,
            "has_next": page * size < total,
            "order_sn_list": [self.rendered(self.state_at(i, now_s)) for i in rows],
            "request_id": _request_id(),
        }
        return {"order_sn_increment_get_response": body}

    def information(self, p: dict, now_s: int) -> dict:
        order_sn = str(p.get("order_sn") or "")
        state = self.state_of(order_sn, now_s) if order_sn else None
        if state is None:
            raise _param_error(f"订单 {order_sn} 不存在")
        return {
            "order_info_get_response": {
                "order_info": self.rendered(state),
                "request_id": _request_id(),
            }
        }

    def decrypt(self, p: dict, now_s: int) -> dict:
        items = p.get("data_list")
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except ValueError:
                items = None
        if not isinstance(items, list) or not items or len(items) > MAX_DECRYPT:
            raise _param_error(f"data_list 需要 1..{MAX_DECRYPT} 条")
        out = []
        for item in items:
            tag = str(item.get("data_tag", ""))
            cipher = str(item.get("encrypted_data", ""))
            plain = self.sealer.open(cipher) if self.state_of(tag, now_s) else None
            out.append(
                {
                    "data_tag": tag,
                    "encrypted_data": cipher,
                    "decrypted_data": plain or "",
                    "error_code": 0 if plain is not None else 47001,
                    "error_msg": "" if plain is not None else "解密失败",
                }
            )
        return {
            "open_decrypt_batch_response": {"data_decrypt_list": out, "request_id": _request_id()}
        }

    def refresh(self, p: dict) -> dict:
        issued = self.tokens.refresh(p.get("refresh_token"))
        if issued is None:
            raise _param_error("refresh_token 无效")
        access, refresh = issued
        now = int(time.time())
        return {
            "pop_auth_token_refresh_response": {
                "access_token": access,
                "expires_in": 86400,
                "expires_at": now + 86400,
                "refresh_token": refresh,
                "refresh_token_expires_in": 2592000,
                "refresh_token_expires_at": now + 2592000,
                "owner_id": "sandbox",
                "owner_name": "沙盒店铺",
                "scope": [INCREMENT, INFORMATION, DECRYPT],
            }
        }

    # -- push (sent by sandbox.push) -----------------------------------------------------------
    @classmethod
    def build_push(
        cls,
        state: OrderState,
        kind: str,
        message_id: str,
        credentials: Mapping[str, str],
        sent: datetime,
    ) -> PushBody:
        """A PMC message as a form, signed like a PDD request."""
        o = state.order
        order_status, _, refund_status, _ = statuses(state)
        content = {
            "tid": o.platform_order_no,
            "mall_id": o.shop_id,
            "order_status": order_status,
            "refund_status": refund_status,
            "updated_at": bj(state.modified),
        }
        sent_ms = int(sent.timestamp() * 1000)
        fields: dict[str, object] = {
            "id": message_id,
            "commandType": "Common",
            "time": sent_ms,
            "sendTime": sent_ms,
            "type": PUSH_TYPES[kind],
            "mallID": o.shop_id,
            "content": compact_json(content),
            "client_id": credentials["client_id"],
            "timestamp": unix_s(sent),
        }
        fields["sign"] = pdd_sign(fields, credentials["client_secret"])
        return form_body(fields), dict(FORM_HEADERS)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        order_status, confirm_status, refund_status, after_sales = statuses(state)
        platform, shop = split_coupons(o)
        r = o.receiver
        full_address = f"{r.province}{r.city}{r.district}{r.address}"
        # ciphertext only while the order waits to be shipped (the platform's rule)
        clear = state.unified == "paid_pending_review"
        seal = self.sealer.seal if clear else (lambda _: "")
        carrier = self.shipment_of(o) if state.shipped else None
        return drop_none(
            {
                "order_sn": no,
                "mall_id": o.shop_id,
                "open_id": o.buyer_id,
                "order_status": order_status,
                "confirm_status": confirm_status,
                "refund_status": refund_status,
                "after_sales_status": after_sales,
                "group_status": 1,
                "trade_type": 0,
                "created_time": bj(o.created_at),
                "confirm_time": bj(state.paid_at),
                "pay_time": bj(state.paid_at),
                "shipping_time": bj(state.shipped_at),
                "receive_time": bj(state.delivered_at),
                "last_ship_time": bj(state.paid_at + timedelta(hours=48))
                if state.paid_at
                else None,
                "updated_at": bj(state.modified),
                "goods_amount": yuan_num(o.goods_value),
                "discount_amount": yuan_num(platform + shop),
                "platform_discount": yuan_num(platform),
                "seller_discount": yuan_num(shop),
                "capital_free_discount": 0,
                "postage": yuan_num(o.freight),
                "pay_amount": yuan_num(o.paid_amount),
                "order_change_amount": 0,
                "duo_duo_pay_reduction": 0,
                "buyer_memo": o.buyer_note or "",
                "remark": o.seller_note or "",
                "receiver_name": seal(r.name),
                "receiver_phone": seal(r.phone),
                "receiver_address": seal(r.address),
                "address": seal(full_address),
                "receiver_name_mask": mask_name(r.name),
                "receiver_phone_mask": mask_phone(r.phone),
                "receiver_address_mask": mask_address(r.address),
                "address_mask": f"{r.province}{r.city}{r.district}{mask_address(r.address)}",
                "province": r.province,
                "city": r.city,
                "town": r.district,
                "province_id": 0,
                "city_id": 0,
                "town_id": 0,
                "country": o.country,
                "customs": customs_fields(o),
                "logistics_id": stable_number(carrier[0], 3) if carrier else None,
                "tracking_number": carrier[2] if carrier else None,
                "item_list": [
                    {
                        "goods_id": stable_number(i.sku.split("-")[0], 11),
                        "sku_id": stable_number(i.sku, 12),
                        "goods_name": i.title or i.sku,
                        "goods_spec": i.sku,
                        "goods_count": i.qty,
                        "goods_price": yuan_num(i.price),
                        "outer_id": i.sku,
                        "outer_goods_id": i.sku.split("-")[0],
                    }
                    for i in o.items
                ],
                "promotion_detail_list": [
                    {
                        "promotion_id": c.code,
                        "promotion_type": c.issuer,
                        "promotion_name": "平台券" if c.issuer == "platform" else "店铺券",
                        "discount_amount": yuan_num(c.amount),
                    }
                    for c in o.coupons
                ],
            }
        )


def _request_id() -> str:
    return secrets.token_hex(8)


def _json_arg(value: object) -> list:
    """A list parameter: a JSON array in a JSON body, a JSON string in a form."""
    value = json.loads(value) if isinstance(value, str) else value
    if not isinstance(value, list):
        raise ValueError
    return value


def _stock_list(rows: list[StockRow]) -> list[dict]:
    return [
        {
            "outer_id": r.sku,
            "quantity": r.sellable,
            "reserve_quantity": r.withheld,
            "is_onsale": 0 if r.paused else 1,
        }
        for r in rows
    ]


def _int(p: dict, name: str, default: int | None) -> int:
    raw = p.get(name)
    if raw in (None, ""):
        if default is None:
            raise _param_error(f"缺少参数 {name}")
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise _param_error(f"{name} 必须是整数") from None
