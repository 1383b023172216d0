"""Youzan (有赞云) on loopback, per channels.md §6: `POST /api/{api}/{version}?access_token=...`
with a JSON body. There is no request signing: the access token is the credential.

APIs:
- `youzan.trades.sold.get/4.0.4`: `start_update/end_update` (the incremental way) or
  `start_created/end_created` ('yyyy-MM-dd HH:mm:ss' Beijing, inclusive, at most **31 days**
  apart ⚠ chosen), `page_no` (from 1), `page_size` (max 100, default 20), `status` filter;
  newest first (by update_time with the update pair, else by created). -> `{"success": true,
  "code": 200, "message": "successful", "data": {"total_results", "full_order_info_list":
  [entry]}}`. The list is complete: an entry is what the detail call returns.
- `youzan.trade.get/4.0.0` (`{"tid"}`) -> `data` = one entry.
- `youzan.cloud.secret.decrypt.batch/1.0.0` (`{"sources": [ciphertext, ...]}`, max 100) ->
  `data` = `{ciphertext: plaintext}`.
- Stock (⚠ sandbox convention in the Youzan shape): `youzan.item.sku.stock.list/1.0.0`
  (`{"page_no" (from 1), "page_size" (max 100)}`) -> `data{total_results, items[{outer_sku_id
  (= sku), quantity (units on sale), withhold_quantity (units frozen), is_display (1 | 0)}]}`;
  `youzan.item.sku.withhold.update/1.0.0` (`{"items": [{outer_sku_id, withhold_quantity}]}`,
  max 50): the units frozen become these (absolute); `youzan.item.display.update/1.0.0`
  (`{"outer_sku_ids": [...], "is_display": 0 | 1}`, max 50): pause / lift the sale. Both answer
  `data.items`; an unknown SKU: 141500101 (⚠ chosen), nothing changed.
- Token: `POST /auth/token` JSON `{client_id, client_secret, authorize_type: "refresh_token",
  refresh_token}` -> `{"success": true, "code": 200, "data": {access_token, expires (ms
  epoch), scope, refresh_token, authority_id}}`.

Entry: {full_order_info{order_info{tid, status, status_str, type, kdt_id (= shop id),
node_kdt_id, created, update_time, pay_time, consign_time, success_time, close_time,
refund_state, close_type}, buyer_info{yz_open_id (= buyer id), fans_nickname (masked),
buyer_phone (ciphertext)}, address_info{receiver_name, receiver_tel, delivery_address
(ciphertext), delivery_province, delivery_city, delivery_district, delivery_postal_code,
delivery_country (ISO)}, remark_info{buyer_message, trade_memo}, pay_info{total_fee (goods
value), post_fee, payment (= total_fee - discounts + post_fee), outer_transactions,
transaction}, orders[{oid, item_id, sku_id, title, num, price, total_fee, payment,
outer_item_id, outer_sku_id (= sku), sku_properties_name}], customs{hs_code, declared_value,
...}}, order_promotion{order_discount_fee, item_discount_fee, adjust_fee, order[{promotion_id
(code), promotion_type "coupon", promotion_title, sponsor (platform | shop ⚠), discount_fee}]},
delivery_order[{express_state, dists[{dist_info{express_id, express_name, express_no}}]}],
refund_order[{refund_id, refund_type, refund_state, refund_fee}]}. Amounts are yuan strings,
times Beijing 'yyyy-MM-dd HH:mm:ss'; unset times are "".

Status: WAIT_BUYER_PAY, WAIT_SELLER_SEND_GOODS (paid), WAIT_BUYER_CONFIRM_GOODS (shipped),
TRADE_SUCCESS (delivered), TRADE_CLOSED (closed). refund_state: 0 none, 11 full refund in
progress (return or rejected delivery), 12 fully refunded. Unified after_sale = not closed and
refund_state <> 0. close_type: 2 refunded, 4 cancelled.

Errors: gateway errors (token, rate limit) `{"gw_err_resp": {"err_code", "err_msg"},
"success": false, "code", "message"}`: 10003 access_token expired or invalid, 20001 rate
limited (retry after 1 s); business errors `{"success": false, "code", "message", "data":
null}`: 10001 invalid parameter (window over 31 days, page_size over 100), 10002 no such
trade, 10004 unknown API; `/auth/token` errors: 10001 bad client or grant type, 10003 bad
refresh_token.

Push: JSON body `{client_id, id, kdt_id, kdt_name, mode, msg, sign, status, test, type,
version, timestamp}`, `msg` = urlencoded JSON `{tid, status, update_time}`, `sign` =
md5(client_id + msg + client_secret); headers `Event-Sign` = md5(client_id + raw body +
client_secret), `Event-Type`, `Client-Id`. Types: trade_TradeCreate, trade_TradePaid,
trade_TradeSellerShip, trade_TradeSuccess, trade_TradeClose, trade_TradeBuyerRefund (⚠),
trade_TradeMemoModified (modified). `timestamp` (unix s) is a sandbox addition. Both
signatures are sent, as Youzan does; either one alone verifies a message (the header covers the
whole body; the legacy `sign` only `msg`), so a receiver must not demand both.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import quote

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gateways.base import Gateway
from sandbox.gateways.common import (
    JSON_HEADERS,
    OrderState,
    PushBody,
    bj,
    compact_json,
    customs_fields,
    json_response,
    line_discounts,
    mask_name,
    md5_hex,
    parse_bj,
    split_coupons,
    stable_number,
    unix_s,
    yuan,
)
from sandbox.gateways.stock import StockRow
from sandbox.gateways.store import epoch_s

SOLD_GET = "youzan.trades.sold.get/4.0.4"
TRADE_GET = "youzan.trade.get/4.0.0"
DECRYPT = "youzan.cloud.secret.decrypt.batch/1.0.0"
STOCK_LIST = "youzan.item.sku.stock.list/1.0.0"
STOCK_WITHHOLD = "youzan.item.sku.withhold.update/1.0.0"
DISPLAY = "youzan.item.display.update/1.0.0"
STOCK_APIS = (STOCK_LIST, STOCK_WITHHOLD, DISPLAY)
APIS = (SOLD_GET, TRADE_GET, DECRYPT, *STOCK_APIS)
MAX_STOCK_BATCH = 50
MAX_WINDOW = timedelta(days=31)
MAX_PAGE_SIZE = 100
MAX_DECRYPT = 100
# change kind (common.CHANGE_KINDS) -> push message type
PUSH_TYPES = {
    "created": "trade_TradeCreate", "pay": "trade_TradePaid", "ship": "trade_TradeSellerShip",
    "deliver": "trade_TradeSuccess", "cancel": "trade_TradeClose", "refund": "trade_TradeClose",
    "after_sale": "trade_TradeBuyerRefund", "modified": "trade_TradeMemoModified",
}  # fmt: skip
STATUS_STR = {
    "WAIT_BUYER_PAY": "待付款",
    "WAIT_SELLER_SEND_GOODS": "待发货",
    "WAIT_BUYER_CONFIRM_GOODS": "已发货",
    "TRADE_SUCCESS": "已完成",
    "TRADE_CLOSED": "已关闭",
}


def trade_status(state: OrderState) -> str:
    return {
        "awaiting_payment": "WAIT_BUYER_PAY",
        "paid_pending_review": "WAIT_SELLER_SEND_GOODS",
        "in_transit": "WAIT_BUYER_CONFIRM_GOODS",
        "delivered": "TRADE_SUCCESS",
        "closed": "TRADE_CLOSED",
        "after_sale": "TRADE_SUCCESS" if state.delivered_at else "WAIT_BUYER_CONFIRM_GOODS",
    }[state.unified]


def refund_state(state: OrderState) -> int:
    if state.after_sale in ("return", "reject"):
        return 11
    if state.after_sale == "refund" or (state.unified == "closed" and state.refunded_at):
        return 12
    return 0


class YouzanError(Exception):
    def __init__(self, code: int, message: str, *, gateway: bool = False):
        super().__init__(message)
        body: dict = {"success": False, "code": code, "message": message}
        if gateway:
            body["gw_err_resp"] = {"err_code": code, "err_msg": message}
        else:
            body["data"] = None
        self.body = body


class YouzanGateway(Gateway):
    channel = "youzan"
    # the world's facts about youzan (see Gateway)
    share = 0.05
    shops = (("44120395", "橙意有赞微商城"),)
    push_types = PUSH_TYPES
    seal_prefix = "$$"
    seal_suffix = "$"

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (tid: E + 20 digits)."""
        return f"E{t:%Y%m%d%H%M%S}{i % 10**6:06d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "client_id": secrets.token_hex(8),
            "client_secret": secrets.token_hex(16),
            "access_token": secrets.token_hex(16),
            "refresh_token": secrets.token_hex(16),
        }

    @property
    def secret(self) -> str:
        return self.credentials["client_secret"]

    def routes(self) -> list[Route]:
        return [
            Route("/api/{api}/{version}", self.handle, methods=["POST"]),
            Route("/auth/token", self.token, methods=["POST"]),
        ]

    def rate_limited(self) -> Response:
        return json_response(YouzanError(20001, "请求过于频繁，请 1 秒后重试", gateway=True).body)

    async def handle(self, request: Request) -> Response:
        api = f"{request.path_params['api']}/{request.path_params['version']}"
        token = request.query_params.get("access_token")
        try:
            check = self.tokens.check(token)
            if check != "ok":
                raise YouzanError(10003, "access_token 过期或无效", gateway=True)
            if api not in APIS:
                raise YouzanError(10004, f"API {api} 不存在")
            self.tokens.use(token)
            faulted = await self.fault_gate()
            if faulted is not None:
                return faulted
            try:
                params = json.loads(await request.body() or b"{}")
                if not isinstance(params, dict):
                    raise ValueError
            except ValueError:
                raise YouzanError(10001, "请求体必须是 JSON 对象") from None
            now_s = self.now_s()
            if api == SOLD_GET:
                data = self.sold_get(params, now_s)
            elif api == TRADE_GET:
                data = self.trade_get(params, now_s)
            elif api in STOCK_APIS:
                data = self.stock_call(api, params)
            else:
                data = self.decrypt(params)
            return json_response(
                {"success": True, "code": 200, "message": "successful", "data": data}
            )
        except YouzanError as err:
            return json_response(err.body)

    def stock_call(self, api: str, params: dict) -> dict:
        """The stock APIs (see the module docstring)."""
        if api == STOCK_LIST:
            page = _int(params, "page_no", 1)
            size = _int(params, "page_size", 20)
            if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
                raise YouzanError(10001, "page_no 从 1 开始；page_size 取值 1..100")
            rows, total = self.stock.page((page - 1) * size, size)
            return {"total_results": total, "items": _stock_list(rows)}
        try:
            if api == STOCK_WITHHOLD:
                changes = {
                    str(e["outer_sku_id"]): int(e["withhold_quantity"]) for e in params["items"]
                }
            else:
                display = int(params["is_display"])
                if display not in (0, 1):
                    raise ValueError
                changes = {str(x): display == 0 for x in params["outer_sku_ids"]}
        except (KeyError, TypeError, ValueError):
            raise YouzanError(10001, "items / outer_sku_ids / is_display 非法") from None
        if not changes or len(changes) > MAX_STOCK_BATCH:
            raise YouzanError(10001, f"每次 1..{MAX_STOCK_BATCH} 个 SKU")
        try:
            if api == STOCK_WITHHOLD:
                rows = self.stock.set_withheld(changes)
            else:
                rows = self.stock.set_paused(changes)
        except KeyError as err:
            raise YouzanError(141500101, f"商品不存在: {err.args[0]}") from None
        return {"items": _stock_list(rows)}

    async def token(self, request: Request) -> Response:
        try:
            p = json.loads(await request.body() or b"{}")
        except ValueError:
            p = {}
        if (
            p.get("client_id") != self.credentials["client_id"]
            or p.get("client_secret") != self.secret
            or p.get("authorize_type") != "refresh_token"
        ):
            return json_response(
                YouzanError(10001, "client_id、client_secret 或 authorize_type 错误").body
            )
        issued = self.tokens.refresh(p.get("refresh_token"))
        if issued is None:
            return json_response(YouzanError(10003, "refresh_token 无效").body)
        access, refresh = issued
        return json_response(
            {
                "success": True,
                "code": 200,
                "message": None,
                "data": {
                    "access_token": access,
                    "expires": int(time.time() * 1000) + 7 * 86400 * 1000,
                    "scope": "trade",
                    "refresh_token": refresh,
                    "authority_id": "sandbox",
                },
            }
        )

    # -- APIs ----------------------------------------------------------------------------------
    def sold_get(self, params: dict, now_s: int) -> dict:
        by_update = "start_update" in params or "end_update" in params
        prefix = ("start_update", "end_update") if by_update else ("start_created", "end_created")
        start = _time(params, prefix[0], 0)
        end = _time(params, prefix[1], now_s)
        if end < start:
            raise YouzanError(10001, f"{prefix[0]} 不能晚于 {prefix[1]}")
        if end - start > MAX_WINDOW.total_seconds():
            raise YouzanError(10001, "查询时间跨度不能超过 31 天")
        page_no = _int(params, "page_no", 1)
        size = _int(params, "page_size", 20)
        if page_no < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            raise YouzanError(10001, "page_no 从 1 开始；page_size 取值 1..100")
        wanted = params.get("status") or None

        def window() -> np.ndarray:
            if by_update:
                idx, _ = self.store.modified_window(start, end, now_s)
            else:
                idx, _ = self.store.created_window(start, end, now_s)
            if wanted:
                keep = [i for i in idx.tolist() if trade_status(self.state_at(i, now_s)) == wanted]
                idx = np.asarray(keep, dtype=np.int64)
            return idx[::-1]  # newest first

        key = (SOLD_GET, by_update, start, end, wanted)
        rows, total = self.paged(key, window, (page_no - 1) * size, size, now_s)
        return {
            "total_results": total,
            "full_order_info_list": [self.rendered(self.state_at(i, now_s)) for i in rows],
        }

    def trade_get(self, params: dict, now_s: int) -> dict:
        tid = str(params.get("tid") or "")
        state = self.state_of(tid, now_s) if tid else None
        if state is None:
            raise YouzanError(10002, f"交易 {tid} 不存在")
        return self.rendered(state)

    def decrypt(self, params: dict) -> dict:
        sources = params.get("sources")
        if not isinstance(sources, list) or not sources or len(sources) > MAX_DECRYPT:
            raise YouzanError(10001, f"sources 需要 1..{MAX_DECRYPT} 条")
        out = {}
        for source in sources:
            plain = self.sealer.open(str(source))
            out[str(source)] = plain if plain is not None else str(source)
        return out

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
        """The message JSON (its `msg` signed) with the raw body signed again in a header."""
        o = state.order
        status = trade_status(state)
        msg = quote(
            compact_json(
                {"tid": o.platform_order_no, "status": status, "update_time": bj(state.modified)}
            )
        )
        client_id, secret = credentials["client_id"], credentials["client_secret"]
        message = {
            "client_id": client_id,
            "id": message_id,
            "kdt_id": o.shop_id,
            "kdt_name": o.shop_id,
            "mode": 1,
            "msg": msg,
            "sign": md5_hex(client_id + msg + secret),
            "status": status,
            "test": False,
            "type": PUSH_TYPES[kind],
            "version": int(sent.timestamp() * 1000),
            "timestamp": unix_s(sent),
        }
        body = compact_json(message)
        headers = {
            **JSON_HEADERS,
            "Event-Sign": md5_hex(client_id + body + secret),
            "Event-Type": PUSH_TYPES[kind],
            "Client-Id": client_id,
        }
        return body.encode(), headers

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        status = trade_status(state)
        refund = refund_state(state)
        platform, shop = split_coupons(o)
        r = o.receiver
        seal = self.sealer.seal
        lines = []
        for k, (item, discount) in enumerate(zip(o.items, line_discounts(o), strict=True), 1):
            total = item.price * item.qty
            lines.append(
                {
                    "oid": f"{no}{k:02d}",
                    "item_id": stable_number(item.sku.split("-")[0], 9),
                    "sku_id": stable_number(item.sku, 9),
                    "title": item.title or item.sku,
                    "num": item.qty,
                    "price": yuan(item.price),
                    "total_fee": yuan(total),
                    "payment": yuan(total - discount),
                    "outer_item_id": item.sku.split("-")[0],
                    "outer_sku_id": item.sku,
                    "sku_properties_name": "",
                }
            )
        closed_at = state.closed_at
        info: dict = {
            "order_info": {
                "tid": no,
                "status": status,
                "status_str": STATUS_STR[status],
                "type": 0,
                "kdt_id": o.shop_id,
                "node_kdt_id": o.shop_id,
                "created": bj(o.created_at),
                "update_time": bj(state.modified),
                "pay_time": bj(state.paid_at) or "",
                "consign_time": bj(state.shipped_at) or "",
                "success_time": bj(state.delivered_at) or "",
                "close_time": bj(closed_at) or "",
                "refund_state": refund,
                "close_type": (4 if state.cancelled_at else 2) if closed_at else 0,
            },
            "buyer_info": {
                "yz_open_id": o.buyer_id,
                "fans_nickname": mask_name(o.buyer_id),
                "buyer_phone": seal(r.phone),
            },
            "address_info": {
                "receiver_name": seal(r.name),
                "receiver_tel": seal(r.phone),
                "delivery_address": seal(r.address),
                "delivery_province": r.province,
                "delivery_city": r.city,
                "delivery_district": r.district,
                "delivery_postal_code": "",
                "delivery_country": o.country,
            },
            "remark_info": {"buyer_message": o.buyer_note or "", "trade_memo": o.seller_note or ""},
            "pay_info": {
                "total_fee": yuan(o.goods_value),
                "post_fee": yuan(o.freight),
                "payment": yuan(o.paid_amount),
                "outer_transactions": [],
                "transaction": [],
            },
            "orders": lines,
        }
        customs = customs_fields(o)
        if customs:
            info["customs"] = customs
        deliveries = []
        if state.shipped:
            code, name, tracking = self.shipment_of(o)
            deliveries.append(
                {
                    "express_state": 1,
                    "dists": [
                        {
                            "dist_info": {
                                "express_id": stable_number(code, 2),
                                "express_name": name,
                                "express_no": tracking,
                            }
                        }
                    ],
                }
            )
        refunds = []
        if refund:
            refunds.append(
                {
                    "refund_id": f"R{no}",
                    "refund_type": 2 if state.after_sale == "return" else 1,
                    "refund_state": refund,
                    "refund_fee": yuan(o.paid_amount),
                }
            )
        return {
            "full_order_info": info,
            "order_promotion": {
                "order_discount_fee": yuan(platform + shop),
                "item_discount_fee": "0.00",
                "adjust_fee": "0.00",
                "order": [
                    {
                        "promotion_id": c.code,
                        "promotion_type": "coupon",
                        "sponsor": c.issuer,
                        "promotion_title": "平台券" if c.issuer == "platform" else "店铺优惠券",
                        "discount_fee": yuan(c.amount),
                    }
                    for c in o.coupons
                ],
            },
            "delivery_order": deliveries,
            "refund_order": refunds,
        }


def _time(params: dict, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return epoch_s(parse_bj(str(raw)))
    except ValueError:
        raise YouzanError(10001, f"{name} 格式应为 yyyy-MM-dd HH:mm:ss") from None


def _stock_list(rows: list[StockRow]) -> list[dict]:
    return [
        {
            "outer_sku_id": r.sku,
            "quantity": r.sellable,
            "withhold_quantity": r.withheld,
            "is_display": 0 if r.paused else 1,
        }
        for r in rows
    ]


def _int(params: dict, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise YouzanError(10001, f"{name} 必须是整数") from None
