"""JD (JOS) on loopback: `/routerjson` (GET or form POST), per channels.md §2.

Request: `method, app_key, access_token, timestamp ('yyyy-MM-dd HH:mm:ss', optionally
'.SSS+0800'; at most 6 min off), v=2.0, 360buy_param_json` (all business parameters packed into
one JSON string), `sign`; `format`/`sign_method` may be sent.

Signing: every non-empty parameter except `sign`, sorted by key, joined key+value:
UPPER(hex(md5(secret + s + secret))). `360buy_param_json` is signed exactly as sent. An empty
value is skipped (the JOS SDKs sign non-empty parameters only; channels.md §2), never signed
as its bare key; a whitespace value is signed as sent. Pushes follow the same rule.

Methods (business parameters inside 360buy_param_json):
- `jingdong.pop.order.enSearch(start_date, end_date, optional_fields (required, comma list),
  order_state?, page=1, page_size (max 100), sortType (1 = descending), dateType (1 = created,
  else modified))`: orders in [start_date, end_date] (inclusive), at most one calendar month
  apart. `{"jingdong_pop_order_enSearch_responce": {"code": "0", "searchorderinfo_result":
  {"apiResult": {...}, "orderTotal": N, "orderInfoList": [...]}}}`. The list is partial
  (ids, state, times, amounts): fetch each order with enGet.
- `jingdong.pop.order.enGet(order_id, optional_fields)` -> `{"jingdong_pop_order_enGet_responce":
  {"code": "0", "orderDetailInfo": {"apiResult", "orderInfo": {...}}}}`.
- `jingdong.jos.order.oaid.decrypt(getReceiverInfoListReqVO: {orderInfos: [{orderId, oaid}]
  (max 20), scenesType})` -> `{"jingdong_jos_order_oaid_decrypt_responce": {"code": "0",
  "returnType": {"code": "0", "msg", "data": [{orderId, oaid, fullname, mobile, telephone,
  fullAddress}]}}}`.
- Token refresh (OAuth, not signed): `GET|POST /oauth2/refresh_token?app_key&app_secret&
  grant_type=refresh_token&refresh_token` -> `{"access_token", "refresh_token", "expires_in",
  "scope", "open_id", "uid", "time", "token_type", "code": 0}`. (sandbox.json carries a
  `refresh_token` for JD too.)

Stock (⚠ sandbox convention in the JOS shape; answers `{"<method>_responce": {"code": "0",
"skuStockResult": {"apiResult", "total", "skuStocks": [{outerId (= sku), stockNum (units on
sale), lockNum (units frozen), wareStatus (8 on sale, 2 off shelf)}]}}}`):
- `jingdong.stock.read.findSkuStock(page=1, pageSize=20 (max 100))`: every SKU, by outerId.
- `jingdong.stock.write.lockSkuStock(skuStocks: [{outerId, lockNum}] (max 50))`: the units
  frozen per SKU become these (absolute).
- `jingdong.ware.write.updateWareStatus(outerIds: [...] (max 50), wareStatus: 2 | 8)`: pause
  (2, off shelf) or lift (8) the sale. An unknown outerId: apiResult 10100030, nothing changed.

Order fields (`optional_fields` selects top-level keys; all are in `ORDER_FIELDS`): orderId,
venderId (= shop id), orderType, payType, orderState, orderStateRemark, afsStatus (after-sale
only: 退款/退货中/拒收), orderTotalPrice (goods value), orderSellerPrice (goods value - shop
discount), sellerDiscount (shop coupons), orderPayment (paid), freightPrice, balanceUsed,
orderStartTime, paymentConfirmTime, shipTime (⚠ sandbox addition), orderEndTime, modified
(unset times are "0001-01-01 00:00:00" as on JOS), pin (masked buyer), open_id_buyer (= buyer
id), orderRemark (buyer note), venderRemark (seller note), waybill (tracking number), logisticsId
(carrier code), consigneeInfo{fullname, mobile, telephone, fullAddress (ciphertext), province,
city, county, town, country}, oaid, itemInfoList[{skuId, outerSkuId (= sku), wareId, skuName,
jdPrice, itemTotal (qty), productNo}], couponDetailList[{orderId, skuId, couponType
("41-京东券优惠" platform, "52-店铺优惠" shop), couponPrice, couponCode}], customs{hsCode,
declaredValue (yuan), ...}.

Status: WAIT_PAY (⚠ awaiting payment; JOS hides such orders, the sandbox shows them so the
truth is complete), WAIT_SELLER_STOCK_OUT (paid), WAIT_GOODS_RECEIVE_CONFIRM (shipped),
FINISHED_L (delivered), TRADE_CANCELED (closed), LOCKED (after-sale; see afsStatus).

Errors: system errors `{"error_response": {"code": "<n>", "zh_desc", "en_desc"}}`: 2 App Call
Limited (rate-limit fault), 4/5 missing/unsupported version, 7/8 missing/invalid timestamp,
11/12 missing/invalid signature, 14/15 missing/invalid method, 16 invalid app_key (⚠ chosen),
19 invalid access_token (also expired). Business errors come back inside the method's response
as `apiResult{success: false, numberCode, code, chineseErr, englishErr}`: 10100009 window over
one month, 10100010 page_size over 100, 10100011 missing/invalid parameter, 10100029 no such
order.

Push (⚠ JOS pushes through JMQ; the sandbox uses an HTTP form): `msg_id, topic
(jos_order_create | jos_order_pay | jos_order_ship | jos_order_finish | jos_order_cancel |
jos_order_afs | jos_order_change), content (JSON {orderId, orderState, venderId, modified}),
app_key, timestamp ('yyyy-MM-dd HH:mm:ss'), sign` = UPPER(md5(app_secret + sorted key+value +
app_secret)).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gateways.base import Gateway
from sandbox.gateways.common import (
    FORM_HEADERS,
    OrderState,
    PushBody,
    add_month,
    bj,
    compact_json,
    customs_fields,
    drop_none,
    form_body,
    json_response,
    mask_name,
    parse_bj,
    request_params,
    split_coupons,
    stable_number,
    yuan,
)
from sandbox.gateways.stock import StockRow
from sandbox.gateways.store import epoch_s, from_epoch_s

# change kind (common.CHANGE_KINDS) -> push topic
PUSH_TOPICS = {
    "created": "jos_order_create", "pay": "jos_order_pay", "ship": "jos_order_ship",
    "deliver": "jos_order_finish", "cancel": "jos_order_cancel", "refund": "jos_order_cancel",
    "after_sale": "jos_order_afs", "modified": "jos_order_change",
}  # fmt: skip
SEARCH = "jingdong.pop.order.enSearch"
GET = "jingdong.pop.order.enGet"
DECRYPT = "jingdong.jos.order.oaid.decrypt"
STOCK_READ = "jingdong.stock.read.findSkuStock"
STOCK_LOCK = "jingdong.stock.write.lockSkuStock"
WARE_STATUS = "jingdong.ware.write.updateWareStatus"
STOCK_METHODS = (STOCK_READ, STOCK_LOCK, WARE_STATUS)
METHODS = (SEARCH, GET, DECRYPT, *STOCK_METHODS)
MAX_STOCK_BATCH = 50
ON_SALE, OFF_SHELF = 8, 2  # wareStatus (⚠ JOS: 8 上架在售, 2 下架)
MAX_PAGE_SIZE = 100
MAX_SKEW = timedelta(minutes=6)
MAX_DECRYPT = 20
UNSET = "0001-01-01 00:00:00"

ORDER_FIELDS = (
    "orderId",
    "venderId",
    "orderType",
    "payType",
    "orderState",
    "orderStateRemark",
    "afsStatus",
    "orderTotalPrice",
    "orderSellerPrice",
    "sellerDiscount",
    "orderPayment",
    "freightPrice",
    "balanceUsed",
    "orderStartTime",
    "paymentConfirmTime",
    "shipTime",
    "orderEndTime",
    "modified",
    "pin",
    "open_id_buyer",
    "orderRemark",
    "venderRemark",
    "waybill",
    "logisticsId",
    "consigneeInfo",
    "oaid",
    "itemInfoList",
    "couponDetailList",
    "customs",
)
LIST_FIELDS = frozenset(
    {
        "orderId",
        "venderId",
        "orderType",
        "payType",
        "orderState",
        "orderStateRemark",
        "orderTotalPrice",
        "orderPayment",
        "freightPrice",
        "orderStartTime",
        "paymentConfirmTime",
        "orderEndTime",
        "modified",
    }
)
STATE_REMARK = {
    "WAIT_PAY": "等待付款",
    "WAIT_SELLER_STOCK_OUT": "等待出库",
    "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
    "FINISHED_L": "完成",
    "TRADE_CANCELED": "取消",
    "LOCKED": "锁定",
}
AFS_STATUS = {"refund": "退款", "return": "退货中", "reject": "拒收"}


def jd_sign(params: dict[str, str], secret: str) -> str:
    joined = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
    return hashlib.md5((secret + joined + secret).encode()).hexdigest().upper()


def order_state_name(state: OrderState) -> str:
    return {
        "awaiting_payment": "WAIT_PAY",
        "paid_pending_review": "WAIT_SELLER_STOCK_OUT",
        "in_transit": "WAIT_GOODS_RECEIVE_CONFIRM",
        "delivered": "FINISHED_L",
        "closed": "TRADE_CANCELED",
        "after_sale": "LOCKED",
    }[state.unified]


class JosError(Exception):
    def __init__(self, code: str, zh: str, en: str):
        super().__init__(en)
        self.body = {"code": code, "zh_desc": zh, "en_desc": en}


class BusinessError(Exception):
    def __init__(self, number: int, zh: str, en: str):
        super().__init__(en)
        self.api_result = {
            "success": False,
            "numberCode": number,
            "code": str(number),
            "chineseErr": zh,
            "englishErr": en,
        }


OK_RESULT = {
    "success": True,
    "numberCode": 10100000,
    "code": "0",
    "chineseErr": "",
    "englishErr": "",
}


class JdGateway(Gateway):
    channel = "jd"
    # the world's facts about jd (see Gateway)
    share = 0.15
    shops = (("10238411", "橙意京东自营旗舰店"),)
    push_types = PUSH_TOPICS
    seal_prefix = ""  # JOS TDE ciphertext is bare base64
    seal_suffix = ""

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (orderId: 12 digits)."""
        return f"3{s % 100:02d}{i:09d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "app_key": secrets.token_hex(16).upper(),
            "app_secret": secrets.token_hex(16),
            "access_token": secrets.token_hex(20),
            "refresh_token": secrets.token_hex(20),
        }

    @property
    def secret(self) -> str:
        return self.credentials["app_secret"]

    def routes(self) -> list[Route]:
        return [
            Route("/routerjson", self.handle, methods=["GET", "POST"]),
            Route("/oauth2/refresh_token", self.refresh, methods=["GET", "POST"]),
        ]

    def error(self, err: JosError) -> Response:
        return json_response({"error_response": err.body})

    def rate_limited(self) -> Response:
        return self.error(JosError("2", "限制时间内调用失败次数", "App Call Limited"))

    def authenticate(self, p: dict[str, str]) -> str:
        method = p.get("method")
        if not method:
            raise JosError("14", "缺少方法名参数", "Missing Method")
        if p.get("app_key") != self.credentials["app_key"]:
            raise JosError("16", "无效的app_key", "Invalid App Key")
        if not p.get("timestamp"):
            raise JosError("7", "缺少时间戳参数", "Missing Timestamp")
        try:
            sent = parse_bj(p["timestamp"])
        except ValueError:
            raise JosError("8", "非法的时间戳参数", "Invalid Timestamp") from None
        if abs(sent.timestamp() - time.time()) > MAX_SKEW.total_seconds():
            raise JosError("8", "非法的时间戳参数", "Invalid Timestamp")
        if not p.get("v"):
            raise JosError("4", "缺少版本参数", "Missing Version")
        if p["v"] != "2.0":
            raise JosError("5", "不支持的版本号", "Unsupported Version")
        if not p.get("sign"):
            raise JosError("11", "缺少签名参数", "Missing Signature")
        if not hmac.compare_digest(p["sign"].upper(), jd_sign(p, self.secret)):
            raise JosError("12", "无效签名", "Invalid Signature")
        if method not in METHODS:
            raise JosError("15", "不存在的方法名", "Invalid Method")
        return method

    async def handle(self, request: Request) -> Response:
        p = await request_params(request)
        try:
            method = self.authenticate(p)
            token = p.get("access_token")
            if self.tokens.check(token) != "ok":
                raise JosError("19", "无效access_token", "Invalid access_token")
            self.tokens.use(token)
        except JosError as err:
            return self.error(err)
        faulted = await self.fault_gate()
        if faulted is not None:
            return faulted
        try:
            args = json.loads(p.get("360buy_param_json") or "{}")
            if not isinstance(args, dict):
                raise ValueError
        except ValueError:
            args = None
        now_s = self.now_s()
        key = method.replace("jingdong.", "jingdong_").replace(".", "_") + "_responce"
        if method == SEARCH:
            return json_response(
                {key: {"code": "0", "searchorderinfo_result": self.search(args, now_s)}}
            )
        if method == GET:
            return json_response({key: {"code": "0", "orderDetailInfo": self.get(args, now_s)}})
        if method in STOCK_METHODS:
            return json_response(
                {key: {"code": "0", "skuStockResult": self.stock_call(method, args)}}
            )
        return json_response({key: {"code": "0", "returnType": self.decrypt(args, now_s)}})

    async def refresh(self, request: Request) -> Response:
        p = await request_params(request)
        if (
            p.get("app_key") != self.credentials["app_key"]
            or p.get("app_secret") != self.secret
            or p.get("grant_type") != "refresh_token"
        ):
            return json_response({"code": 2006, "msg": "app_key, app_secret or grant_type invalid"})
        issued = self.tokens.refresh(p.get("refresh_token"))
        if issued is None:
            return json_response({"code": 2011, "msg": "refresh_token invalid"})
        access, refresh = issued
        return json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 31536000,
                "scope": "snsapi_base",
                "open_id": "sandbox",
                "uid": "sandbox",
                "time": int(time.time() * 1000),
                "token_type": "bearer",
                "code": 0,
            }
        )

    # -- methods -------------------------------------------------------------------------------
    def stock_call(self, method: str, args: dict | None) -> dict:
        """The stock methods (see the module docstring)."""
        try:
            if args is None:
                raise BusinessError(10100011, "参数错误", "360buy_param_json is not a JSON object")
            if method == STOCK_READ:
                page = _int_arg(args, "page", 1)
                size = _int_arg(args, "pageSize", 20)
                if size > MAX_PAGE_SIZE:
                    raise BusinessError(10100010, "每页条数不能超过100", "pageSize must be <= 100")
                rows, total = self.stock.page((page - 1) * size, size)
                return {"apiResult": OK_RESULT, "total": total, "skuStocks": _stock_list(rows)}
            try:
                if method == STOCK_LOCK:
                    changes = {str(e["outerId"]): int(e["lockNum"]) for e in args["skuStocks"]}
                else:
                    status = int(args["wareStatus"])
                    if status not in (ON_SALE, OFF_SHELF):
                        raise ValueError
                    changes = {str(x): status == OFF_SHELF for x in args["outerIds"]}
            except (KeyError, TypeError, ValueError):
                raise BusinessError(10100011, "参数错误", "skuStocks / outerIds invalid") from None
            if not changes or len(changes) > MAX_STOCK_BATCH:
                raise BusinessError(10100011, "参数错误", f"1..{MAX_STOCK_BATCH} SKUs per call")
            try:
                if method == STOCK_LOCK:
                    rows = self.stock.set_withheld(changes)
                else:
                    rows = self.stock.set_paused(changes)
            except KeyError as err:
                raise BusinessError(
                    10100030, "商品不存在", f"no such outerId {err.args[0]}"
                ) from None
            return {"apiResult": OK_RESULT, "total": len(rows), "skuStocks": _stock_list(rows)}
        except BusinessError as err:
            return {"apiResult": err.api_result, "total": 0, "skuStocks": []}

    def search(self, args: dict | None, now_s: int) -> dict:
        try:
            if args is None:
                raise BusinessError(10100011, "参数错误", "360buy_param_json is not a JSON object")
            fields = _fields(args)
            start = _date_arg(args, "start_date")
            end = _date_arg(args, "end_date")
            if end < start:
                raise BusinessError(
                    10100009, "开始时间不能晚于结束时间", "start_date after end_date"
                )
            if end > epoch_s(add_month(from_epoch_s(start))):
                raise BusinessError(
                    10100009,
                    "查询时间跨度不能超过一个月",
                    "start_date and end_date must be at most one month apart",
                )
            page = _int_arg(args, "page", 1)
            size = _int_arg(args, "page_size", 20)
            if size > MAX_PAGE_SIZE:
                raise BusinessError(
                    10100010, "每页条数不能超过100", "page_size must be at most 100"
                )
            states = {s for s in str(args.get("order_state") or "").split(",") if s}
            by_created = str(args.get("dateType", "")) == "1"
            desc = str(args.get("sortType", "")) == "1"
        except BusinessError as err:
            return {"apiResult": err.api_result, "orderTotal": 0, "orderInfoList": []}

        def window() -> np.ndarray:
            if by_created:
                idx, _ = self.store.created_window(start, end, now_s)
            else:
                idx, _ = self.store.modified_window(start, end, now_s)
            if states:
                idx = np.asarray(
                    [
                        i
                        for i in idx.tolist()
                        if order_state_name(self.state_at(i, now_s)) in states
                    ],
                    dtype=np.int64,
                )
            return idx[::-1] if desc else idx

        key = (SEARCH, start, end, by_created, desc, tuple(sorted(states)))
        rows, total = self.paged(key, window, (page - 1) * size, size, now_s)
        orders = []
        for i in rows:
            full = self.rendered(self.state_at(i, now_s))
            orders.append({k: v for k, v in full.items() if k in LIST_FIELDS and k in fields})
        return {"apiResult": OK_RESULT, "orderTotal": total, "orderInfoList": orders}

    def get(self, args: dict | None, now_s: int) -> dict:
        try:
            if args is None:
                raise BusinessError(10100011, "参数错误", "360buy_param_json is not a JSON object")
            fields = _fields(args)
            order_id = str(args.get("order_id") or "")
            state = self.state_of(order_id, now_s) if order_id else None
            if state is None:
                raise BusinessError(10100029, "订单不存在", f"order {order_id} not found")
        except BusinessError as err:
            return {"apiResult": err.api_result}
        info = {k: v for k, v in self.rendered(state).items() if k in fields}
        return {"apiResult": OK_RESULT, "orderInfo": info}

    def decrypt(self, args: dict | None, now_s: int) -> dict:
        request = (args or {}).get("getReceiverInfoListReqVO") or {}
        infos = request.get("orderInfos") if isinstance(request, dict) else None
        if not isinstance(infos, list) or not infos or len(infos) > MAX_DECRYPT:
            return {
                "code": "10100011",
                "msg": f"orderInfos must hold 1..{MAX_DECRYPT} entries",
                "data": [],
            }
        data = []
        for info in infos:
            order_id = str(info.get("orderId", ""))
            state = self.state_of(order_id, now_s)
            if state is None or self.sealer.open(str(info.get("oaid", ""))) != order_id:
                data.append(
                    {
                        "orderId": order_id,
                        "oaid": info.get("oaid"),
                        "code": "10100029",
                        "msg": "oaid invalid",
                    }
                )
                continue
            r = state.order.receiver
            data.append(
                {
                    "orderId": order_id,
                    "oaid": info["oaid"],
                    "fullname": r.name,
                    "mobile": r.phone,
                    "telephone": r.phone,
                    "fullAddress": f"{r.province}{r.city}{r.district}{r.address}",
                }
            )
        return {"code": "0", "msg": "success", "data": data}

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
        """A message as a form, signed like a JOS request."""
        o = state.order
        content = {
            "orderId": o.platform_order_no,
            "orderState": order_state_name(state),
            "venderId": o.shop_id,
            "modified": bj(state.modified),
        }
        fields = {
            "msg_id": message_id,
            "topic": PUSH_TOPICS[kind],
            "content": compact_json(content),
            "app_key": credentials["app_key"],
            "timestamp": bj(sent),
        }
        fields["sign"] = jd_sign(fields, credentials["app_secret"])
        return form_body(fields), dict(FORM_HEADERS)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        name = order_state_name(state)
        platform, shop = split_coupons(o)
        r = o.receiver
        carrier = self.shipment_of(o) if state.shipped else None
        end_time = state.closed_at or state.delivered_at
        seal = self.sealer.seal
        return drop_none(
            {
                "orderId": no,
                "venderId": o.shop_id,
                "orderType": "22",
                "payType": "4-在线支付",
                "orderState": name,
                "orderStateRemark": STATE_REMARK[name],
                "afsStatus": AFS_STATUS.get(state.after_sale or ""),
                "orderTotalPrice": yuan(o.goods_value),
                "orderSellerPrice": yuan(o.goods_value - shop),
                "sellerDiscount": yuan(shop),
                "orderPayment": yuan(o.paid_amount),
                "freightPrice": yuan(o.freight),
                "balanceUsed": "0.00",
                "orderStartTime": bj(o.created_at),
                "paymentConfirmTime": bj(state.paid_at) or UNSET,
                "shipTime": bj(state.shipped_at) or UNSET,
                "orderEndTime": bj(end_time) or UNSET,
                "modified": bj(state.modified),
                "pin": mask_name(o.buyer_id),
                "open_id_buyer": o.buyer_id,
                "orderRemark": o.buyer_note or "",
                "venderRemark": o.seller_note or "",
                "waybill": carrier[2] if carrier else "",
                "logisticsId": carrier[0] if carrier else "",
                "consigneeInfo": {
                    "fullname": seal(r.name),
                    "mobile": seal(r.phone),
                    "telephone": seal(r.phone),
                    "fullAddress": seal(f"{r.province}{r.city}{r.district}{r.address}"),
                    "province": r.province,
                    "city": r.city,
                    "county": r.district,
                    "town": "",
                    "country": o.country,
                },
                "oaid": seal(no),
                "itemInfoList": [
                    {
                        "skuId": str(stable_number(i.sku, 11)),
                        "outerSkuId": i.sku,
                        "wareId": str(stable_number(i.sku.split("-")[0], 11)),
                        "skuName": i.title or i.sku,
                        "jdPrice": yuan(i.price),
                        "itemTotal": str(i.qty),
                        "productNo": i.sku,
                    }
                    for i in o.items
                ],
                "couponDetailList": [
                    {
                        "orderId": no,
                        "skuId": "",
                        "couponCode": c.code,
                        "couponPrice": yuan(c.amount),
                        "couponType": "41-京东券优惠" if c.issuer == "platform" else "52-店铺优惠",
                    }
                    for c in o.coupons
                ],
                "customs": customs_fields(o, camel=True),
            }
        )


def _fields(args: dict) -> frozenset[str]:
    raw = args.get("optional_fields")
    if not raw:
        raise BusinessError(10100011, "optional_fields 不能为空", "optional_fields is required")
    return frozenset(f.strip() for f in str(raw).split(",") if f.strip())


def _date_arg(args: dict, name: str) -> int:
    raw = args.get(name)
    if not raw:
        raise BusinessError(10100011, f"{name} 不能为空", f"{name} is required")
    try:
        return epoch_s(parse_bj(str(raw)))
    except ValueError:
        raise BusinessError(
            10100011, f"{name} 格式错误", f"{name} must be yyyy-MM-dd HH:mm:ss"
        ) from None


def _stock_list(rows: list[StockRow]) -> list[dict]:
    return [
        {
            "outerId": r.sku,
            "stockNum": r.sellable,
            "lockNum": r.withheld,
            "wareStatus": OFF_SHELF if r.paused else ON_SALE,
        }
        for r in rows
    ]


def _int_arg(args: dict, name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        value = 0
    if value < 1:
        raise BusinessError(10100011, f"{name} 参数错误", f"{name} must be an integer >= 1")
    return value
