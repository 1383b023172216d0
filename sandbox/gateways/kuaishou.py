"""Kuaishou shop (快手小店) on loopback, per channels.md §5: `/open/<method with dots as slashes,
without the leading "open.">`, e.g. `/open/order/cursor/list`, GET (query) or form POST.

Request: `appkey, method, version=1, access_token, timestamp (unix ms; at most 10 min off ⚠
chosen), signMethod (MD5 | HMAC_SHA256), param (the business JSON string), sign`.

Signing: every parameter except `sign`, sorted by key, joined as `k=v` with `&`, then
`&signSecret=<sign_secret>` appended (the sign secret, not the app secret); MD5 -> lowercase
hex md5; HMAC_SHA256 -> base64 of HMAC-SHA256(key=sign_secret, same string).

Methods:
- `open.order.cursor.list(queryType (1 created, 2 updated), beginTime, endTime (ms, at most 7
  days apart), pageSize (max 50), sort (1 newest first = default, 2 oldest first), cursor
  ("" first), orderViewStatus (1 all, 2 unpaid, 3 paid, 4 shipped, 5 received, 7 closed))`:
  -> `{"result": 1, "error_msg": "success", "data": {"cursor", "orderList": [...]}}`; the
  cursor is opaque; the last page returns cursor "nomore". The list is complete.
- `open.order.detail(oid)` -> `data` = the order.
- `open.order.decrypt.batch(batchDecryptList: [{bizId: oid, encryptedData}] (max 100))` ->
  `data.decryptList[{bizId, encryptedData, decryptedData, errorCode (1 = ok), errorMsg}]`.
- Token refresh (not signed): `GET|POST /oauth2/refresh_token?app_id&app_secret&
  grant_type=refresh_token&refresh_token` -> `{"result": 1, "access_token", "expires_in",
  "refresh_token", "refresh_token_expires_in", "scopes"}`.
- Stock (⚠ sandbox convention in the Kuaishou shape): `open.item.sku.stock.list(cursor ("" at
  first), pageSize (max 50))` -> `data{cursor (next, or "nomore"), skuList[{goodsCode (= sku),
  stockNum (units on sale), withholdNum (units frozen), shelfStatus (1 on shelf, 0 off)}]}`;
  `open.item.sku.stock.withhold(skuList: [{goodsCode, withholdNum}] (max 50))`: the units
  frozen become these (absolute); `open.item.shelf.status.update(goodsCodes: [...] (max 50),
  shelfStatus: 0 | 1)`: pause / lift the sale. Both answer `data.skuList`; an unknown
  goodsCode: 12 ITEM_NOT_FOUND, nothing changed.

Order: orderBaseInfo{oid, status, createTime, payTime, updateTime, sendTime, recvTime (ms; 0
unset), totalFee (goods value), discountFee (= platformDiscountFee + sellerDiscountFee),
platformDiscountFee, sellerDiscountFee, expressFee, payAmount (= totalFee - discountFee +
expressFee), all integer FEN (⚠ field meanings chosen), buyerOpenId (= buyer id), buyerNick
(masked), remark (buyer note), sellerRemark, sellerId (= shop id), payType, cpsType},
orderItemInfoList[{orderItemId, itemId, skuId, relSkuId, itemTitle, skuDesc, goodsCode (=
sku), num, price, originalPrice, discountFee}] (⚠ a list: Kuaishou orders hold one item, the
sandbox's neutral orders up to five), orderAddress{encryptedConsignee, encryptedMobile,
encryptedAddress, desensitiseConsignee, desensitiseMobile, desensitiseAddress, province,
provinceCode, city, cityCode, district, districtCode, town, country}, orderLogisticsInfo[
{expressNo, expressCode, logisticsId, logisticsCompany}], orderRefundList[{refundId, refundType
(1 refund only, 2 return, 3 rejected delivery), refundStatus (10 in progress, 60 refunded),
refundFee, createTime}], customs{hsCode, declaredValue (yuan), ...}.

Status: 10 unpaid, 30 paid, 40 shipped, 50 received (delivered), 80 closed. After-sale keeps
40/50 with an orderRefundList entry.

Errors `{"result": <code>, "error_msg", "code": "<code>", "sub_code", "sub_msg"}` (HTTP 200;
⚠ codes chosen, channels.md has none): 12 invalid parameter (window over 7 days, pageSize over
50, bad cursor), 17 invalid appkey, 21 rate limited (API_RATE_LIMITED; retry after 1 s), 24
signature check failed (SIGN_INVALID), 25 timestamp out of range, 28 access_token expired or
invalid (ACCESS_TOKEN_EXPIRED / ACCESS_TOKEN_INVALID), 29 unknown method, 40 no such order.

Push (⚠ no public facts; the request signing reused): form `msgId, eventId, event
(kwaishop_order_create, kwaishop_order_paySuccess, kwaishop_order_delivering,
kwaishop_order_received, kwaishop_order_closed, kwaishop_aftersales_create,
kwaishop_order_update), bizId (oid), info (JSON {oid, status, updateTime}), createTime (ms),
appkey, timestamp (ms), signMethod=MD5, sign` = lowercase md5 of the sorted `k=v` pairs joined
with `&` plus `&signSecret=<sign_secret>`.
"""

from __future__ import annotations

import base64
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
    compact_json,
    customs_fields,
    fen,
    form_body,
    json_response,
    line_discounts,
    mask_address,
    mask_name,
    mask_phone,
    maybe_int,
    request_params,
    split_coupons,
    stable_number,
    unix_ms,
)
from sandbox.gateways.stock import StockRow

# change kind (common.CHANGE_KINDS) -> push event
PUSH_EVENTS = {
    "created": "kwaishop_order_create", "pay": "kwaishop_order_paySuccess",
    "ship": "kwaishop_order_delivering", "deliver": "kwaishop_order_received",
    "cancel": "kwaishop_order_closed", "refund": "kwaishop_order_closed",
    "after_sale": "kwaishop_aftersales_create", "modified": "kwaishop_order_update",
}  # fmt: skip
LIST = "open.order.cursor.list"
DETAIL = "open.order.detail"
DECRYPT = "open.order.decrypt.batch"
STOCK_LIST = "open.item.sku.stock.list"
STOCK_WITHHOLD = "open.item.sku.stock.withhold"
SHELF_STATUS = "open.item.shelf.status.update"
STOCK_METHODS = (STOCK_LIST, STOCK_WITHHOLD, SHELF_STATUS)
METHODS = (LIST, DETAIL, DECRYPT, *STOCK_METHODS)
MAX_STOCK_BATCH = 50
MAX_WINDOW = timedelta(days=7)
MAX_PAGE_SIZE = 50
MAX_SKEW = timedelta(minutes=10)
MAX_DECRYPT = 100
NOMORE = "nomore"
VIEW_STATUS = {2: {10}, 3: {30}, 4: {40}, 5: {50}, 7: {80}}
REFUNDS = {"refund": (1, 60), "return": (2, 10), "reject": (3, 10)}


def kuaishou_sign(params: dict[str, str], sign_secret: str, sign_method: str = "MD5") -> str:
    joined = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
    joined += f"&signSecret={sign_secret}"
    if sign_method == "HMAC_SHA256":
        digest = hmac.new(sign_secret.encode(), joined.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()
    return hashlib.md5(joined.encode()).hexdigest()


_STATUS = {
    "awaiting_payment": 10,
    "paid_pending_review": 30,
    "closed": 80,
    "in_transit": 40,
    "delivered": 50,
}


def order_status(state: OrderState) -> int:
    status = _STATUS.get(state.unified)
    return (
        status if status is not None else 50 if state.delivered_at else 40
    )  # after-sale keeps the logistics status


class KsError(Exception):
    def __init__(self, result: int, msg: str, sub_code: str = "", sub_msg: str = ""):
        super().__init__(msg)
        self.body = {
            "result": result,
            "error_msg": msg,
            "code": str(result),
            "sub_code": sub_code,
            "sub_msg": sub_msg,
        }


def _param_error(sub_msg: str) -> KsError:
    return KsError(12, "参数错误", "INVALID_PARAMETER", sub_msg)


class KuaishouGateway(Gateway):
    channel = "kuaishou"
    # the world's facts about kuaishou (see Gateway)
    share = 0.07
    shops = (("2210458831", "橙意快手小店"),)
    push_types = PUSH_EVENTS
    seal_prefix = "#K#"
    seal_suffix = "#"

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (oid: 16 digits)."""
        return f"24{s % 100_000:05d}{i:09d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "app_key": "ks" + str(stable_number(secrets.token_hex(8), 18)),
            "app_secret": secrets.token_hex(16),
            "sign_secret": secrets.token_hex(16),
            "access_token": "ChFvYXV0aC5hY2Nlc3NUb2tlbh" + secrets.token_hex(20),
            "refresh_token": "ChJvYXV0aC5yZWZyZXNoVG9rZW4" + secrets.token_hex(20),
        }

    @property
    def secret(self) -> str:
        return self.credentials["sign_secret"]

    def routes(self) -> list[Route]:
        routes = [
            Route("/" + m.replace(".", "/"), self.handle, methods=["GET", "POST"]) for m in METHODS
        ]
        routes.append(Route("/oauth2/refresh_token", self.refresh, methods=["GET", "POST"]))
        return routes

    def error(self, err: KsError) -> Response:
        return json_response(err.body)

    def rate_limited(self) -> Response:
        return self.error(KsError(21, "调用频率超限", "API_RATE_LIMITED", "请 1 秒后重试"))

    async def handle(self, request: Request) -> Response:
        p = await request_params(request)
        path_method = request.url.path.strip("/").replace("/", ".")
        try:
            method, param = self.authenticate(p, path_method)
            check = self.tokens.check(p.get("access_token"))
            if check == "expired":
                raise KsError(28, "access_token 已过期", "ACCESS_TOKEN_EXPIRED")
            if check != "ok":
                raise KsError(28, "access_token 无效", "ACCESS_TOKEN_INVALID")
            self.tokens.use(p["access_token"])
            faulted = await self.fault_gate()
            if faulted is not None:
                return faulted
            now_s = self.now_s()
            if method == LIST:
                data = self.cursor_list(param, now_s)
            elif method == DETAIL:
                data = self.detail(param, now_s)
            elif method in STOCK_METHODS:
                data = self.stock_call(method, param)
            else:
                data = self.decrypt(param, now_s)
            return json_response({"result": 1, "error_msg": "success", "data": data})
        except KsError as err:
            return self.error(err)

    def authenticate(self, p: dict[str, str], path_method: str) -> tuple[str, dict]:
        for name in ("appkey", "method", "timestamp", "sign"):
            if not p.get(name):
                raise _param_error(f"缺少参数 {name}")
        if p["method"] != path_method or p["method"] not in METHODS:
            raise KsError(29, "方法不存在", "METHOD_NOT_FOUND", p["method"])
        if p["appkey"] != self.credentials["app_key"]:
            raise KsError(17, "appkey 无效", "APPKEY_INVALID")
        try:
            sent_ms = int(p["timestamp"])
        except ValueError:
            raise KsError(25, "timestamp 非法", "TIMESTAMP_INVALID", "毫秒时间戳") from None
        if abs(sent_ms / 1000 - time.time()) > MAX_SKEW.total_seconds():
            raise KsError(25, "timestamp 非法", "TIMESTAMP_INVALID", "与服务器时间相差超过 10 分钟")
        sign_method = p.get("signMethod") or "MD5"
        if sign_method not in ("MD5", "HMAC_SHA256"):
            raise KsError(24, "签名校验失败", "SIGN_INVALID", "signMethod 取值 MD5 或 HMAC_SHA256")
        if not hmac.compare_digest(p["sign"], kuaishou_sign(p, self.secret, sign_method)):
            raise KsError(24, "签名校验失败", "SIGN_INVALID")
        try:
            param = json.loads(p.get("param") or "{}")
        except ValueError:
            param = None
        if not isinstance(param, dict):
            raise _param_error("param 必须是 JSON 对象字符串")
        return p["method"], param

    def stock_call(self, method: str, param: dict) -> dict:
        """The stock methods (see the module docstring)."""
        if method == STOCK_LIST:
            size = _int(param, "pageSize", 20)
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise _param_error("pageSize 取值 1..50")
            cursor = str(param.get("cursor") or "")
            start = _decode_stock_cursor(cursor) if cursor else 0
            if start is None:
                raise _param_error("cursor 非法")
            rows, total = self.stock.page(start, size)
            nxt = start + len(rows)
            more = _encode_cursor(0, nxt) if nxt < total else NOMORE
            return {"cursor": more, "skuList": _stock_list(rows)}
        try:
            if method == STOCK_WITHHOLD:
                changes = {str(e["goodsCode"]): int(e["withholdNum"]) for e in param["skuList"]}
            else:
                shelf = int(param["shelfStatus"])
                if shelf not in (0, 1):
                    raise ValueError
                changes = {str(x): shelf == 0 for x in param["goodsCodes"]}
        except (KeyError, TypeError, ValueError):
            raise _param_error("skuList / goodsCodes / shelfStatus 非法") from None
        if not changes or len(changes) > MAX_STOCK_BATCH:
            raise _param_error(f"每次 1..{MAX_STOCK_BATCH} 个 SKU")
        try:
            if method == STOCK_WITHHOLD:
                rows = self.stock.set_withheld(changes)
            else:
                rows = self.stock.set_paused(changes)
        except KeyError as err:
            raise KsError(12, "商品不存在", "ITEM_NOT_FOUND", str(err.args[0])) from None
        return {"skuList": _stock_list(rows)}

    async def refresh(self, request: Request) -> Response:
        p = await request_params(request)
        if (
            p.get("app_id") != self.credentials["app_key"]
            or p.get("app_secret") != self.credentials["app_secret"]
        ):
            return json_response(
                {"result": 17, "error": "invalid_client", "error_msg": "app_id 或 app_secret 错误"}
            )
        if p.get("grant_type") != "refresh_token":
            return json_response(
                {"result": 12, "error": "unsupported_grant_type", "error_msg": "grant_type"}
            )
        issued = self.tokens.refresh(p.get("refresh_token"))
        if issued is None:
            return json_response(
                {"result": 28, "error": "invalid_grant", "error_msg": "refresh_token 无效"}
            )
        access, refresh = issued
        return json_response(
            {
                "result": 1,
                "access_token": access,
                "expires_in": 172800,
                "refresh_token": refresh,
                "refresh_token_expires_in": 15552000,
                "scopes": ["merchant_order"],
            }
        )

    # -- methods -------------------------------------------------------------------------------
    def cursor_list(self, param: dict, now_s: int) -> dict:
        query_type = _int(param, "queryType", 1)
        begin_ms, end_ms = _int(param, "beginTime", None), _int(param, "endTime", None)
        if end_ms < begin_ms:
            raise _param_error("beginTime 不能晚于 endTime")
        if end_ms - begin_ms > MAX_WINDOW.total_seconds() * 1000:
            raise _param_error("beginTime 与 endTime 间隔不能超过 7 天")
        size = _int(param, "pageSize", 20)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _param_error("pageSize 取值 1..50")
        desc = _int(param, "sort", 1) != 2
        view = _int(param, "orderViewStatus", 1)
        start_s, end_s = -(-begin_ms // 1000), end_ms // 1000  # whole seconds inside the range

        def window() -> tuple[np.ndarray, np.ndarray]:
            if query_type == 2:
                idx, t = self.store.modified_window(start_s, end_s, now_s)
            else:
                idx, t = self.store.created_window(start_s, end_s, now_s)
            if view in VIEW_STATUS:
                keep = np.asarray(
                    [
                        order_status(self.state_at(i, now_s)) in VIEW_STATUS[view]
                        for i in idx.tolist()
                    ],
                    dtype=bool,
                )
                idx, t = idx[keep], t[keep]
            return idx, t

        idx, t = window()
        position = self._position(param.get("cursor") or "", idx, t, desc)
        key = (LIST, query_type, start_s, end_s, desc, view)
        ordered = idx[::-1] if desc else idx
        if self.shift_window(key, ordered, position, now_s):
            idx, t = window()
            position = self._position(param.get("cursor") or "", idx, t, desc)
            ordered = idx[::-1] if desc else idx
        rows = ordered[position : position + size].tolist()
        if self.faults.config.duplicates and position > 0 and position <= len(ordered):
            rows.insert(0, int(ordered[position - 1]))
            self.faults.note("duplicates")
        end = position + size
        if end >= len(ordered):
            cursor = NOMORE
        else:
            sort_t = t[::-1] if desc else t
            last = end - 1
            cursor = _encode_cursor(int(sort_t[last]), int(ordered[last]))
        return {
            "cursor": cursor,
            "orderList": [self.rendered(self.state_at(i, now_s)) for i in rows],
        }

    @staticmethod
    def _position(cursor: str, idx: np.ndarray, t: np.ndarray, desc: bool) -> int:
        """Where the page after `cursor` starts in the sorted window (robust to shifts)."""
        if not cursor:
            return 0
        if cursor == NOMORE:
            return len(idx)
        decoded = _decode_cursor(cursor)
        if decoded is None:
            raise _param_error("cursor 非法")
        ct, ci = decoded
        keys = (t << 24) | idx  # ascending (time, index) as one sortable integer
        ckey = (ct << 24) | ci
        if desc:
            # rows strictly before the cursor in ascending order, read from the top down
            return len(idx) - int(np.searchsorted(keys, ckey, "left"))
        return int(np.searchsorted(keys, ckey, "right"))

    def detail(self, param: dict, now_s: int) -> dict:
        oid = str(param.get("oid") or "")
        state = self.state_of(oid, now_s) if oid else None
        if state is None:
            raise KsError(40, "订单不存在", "ORDER_NOT_FOUND", oid)
        return self.rendered(state)

    def decrypt(self, param: dict, now_s: int) -> dict:
        items = param.get("batchDecryptList")
        if not isinstance(items, list) or not items or len(items) > MAX_DECRYPT:
            raise _param_error(f"batchDecryptList 需要 1..{MAX_DECRYPT} 条")
        out = []
        for item in items:
            biz = str(item.get("bizId", ""))
            cipher = str(item.get("encryptedData", ""))
            plain = self.sealer.open(cipher) if self.state_of(biz, now_s) else None
            out.append(
                {
                    "bizId": biz,
                    "encryptedData": cipher,
                    "decryptedData": plain or "",
                    "errorCode": 1 if plain is not None else 40,
                    "errorMsg": "success" if plain is not None else "解密失败",
                }
            )
        return {"decryptList": out}

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
        """A message as a form, signed like a request (MD5 with the sign secret)."""
        o = state.order
        no = o.platform_order_no
        info = {
            "oid": int(no) if no.isdigit() else no,
            "status": order_status(state),
            "updateTime": int(state.modified.timestamp()) * 1000,
        }
        sent_ms = str(int(sent.timestamp() * 1000))
        fields = {
            "msgId": message_id,
            "eventId": message_id,
            "event": PUSH_EVENTS[kind],
            "bizId": no,
            "info": compact_json(info),
            "createTime": sent_ms,
            "appkey": credentials["app_key"],
            "timestamp": sent_ms,
            "signMethod": "MD5",
        }
        fields["sign"] = kuaishou_sign(
            {k: str(v) for k, v in fields.items()}, credentials["sign_secret"]
        )
        return form_body(fields), dict(FORM_HEADERS)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        platform, shop = split_coupons(o)
        r = o.receiver
        seal = self.sealer.seal
        items = []
        for k, (item, discount) in enumerate(zip(o.items, line_discounts(o), strict=True), 1):
            items.append(
                {
                    "orderItemId": maybe_int(f"{no}{k}"),
                    "itemId": stable_number(item.sku.split("-")[0], 14),
                    "skuId": stable_number(item.sku, 14),
                    "relSkuId": stable_number(item.sku, 10),
                    "itemTitle": item.title or item.sku,
                    "skuDesc": item.sku,
                    "goodsCode": item.sku,
                    "num": item.qty,
                    "price": fen(item.price),
                    "originalPrice": fen(item.price),
                    "discountFee": fen(discount),
                }
            )
        logistics = []
        if state.shipped:
            code, name, tracking = self.shipment_of(o)
            logistics.append(
                {
                    "expressNo": tracking,
                    "expressCode": stable_number(code, 2),
                    "logisticsId": stable_number(tracking, 12),
                    "logisticsCompany": name,
                }
            )
        refunds = []
        kind = state.after_sale or (
            "refund" if state.unified == "closed" and state.refunded_at else None
        )
        if kind:
            refund_type, refund_status = REFUNDS[kind]
            at = state.after_sale_at or state.refunded_at
            refunds.append(
                {
                    "refundId": stable_number(f"refund:{no}", 16),
                    "refundType": refund_type,
                    "refundStatus": refund_status,
                    "refundFee": fen(o.paid_amount),
                    "createTime": unix_ms(at),
                }
            )
        body = {
            "orderBaseInfo": {
                "oid": maybe_int(no),
                "status": order_status(state),
                "createTime": unix_ms(o.created_at),
                "payTime": unix_ms(state.paid_at) or 0,
                "updateTime": unix_ms(state.modified),
                "sendTime": unix_ms(state.shipped_at) or 0,
                "recvTime": unix_ms(state.delivered_at) or 0,
                "totalFee": fen(o.goods_value),
                "discountFee": fen(platform + shop),
                "platformDiscountFee": fen(platform),
                "sellerDiscountFee": fen(shop),
                "expressFee": fen(o.freight),
                "payAmount": fen(o.paid_amount),
                "buyerOpenId": o.buyer_id,
                "buyerNick": mask_name(o.buyer_id),
                "remark": o.buyer_note or "",
                "sellerRemark": o.seller_note or "",
                "sellerId": maybe_int(o.shop_id),
                "payType": 1,
                "cpsType": 0,
            },
            "orderItemInfoList": items,
            "orderAddress": {
                "encryptedConsignee": seal(r.name),
                "encryptedMobile": seal(r.phone),
                "encryptedAddress": seal(r.address),
                "desensitiseConsignee": mask_name(r.name),
                "desensitiseMobile": mask_phone(r.phone),
                "desensitiseAddress": mask_address(r.address),
                "province": r.province,
                "provinceCode": 0,
                "city": r.city,
                "cityCode": 0,
                "district": r.district,
                "districtCode": 0,
                "town": "",
                "country": o.country,
            },
            "orderLogisticsInfo": logistics,
            "orderRefundList": refunds,
        }
        customs = customs_fields(o, camel=True)
        if customs:
            body["customs"] = customs
        return body


def _encode_cursor(t: int, i: int) -> str:
    return base64.urlsafe_b64encode(f"{t}:{i}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        t, i = raw.split(":")
        return int(t), int(i)
    except ValueError:
        return None


def _decode_stock_cursor(cursor: str) -> int | None:
    decoded = _decode_cursor(cursor)
    return None if decoded is None or decoded[0] != 0 or decoded[1] < 0 else decoded[1]


def _stock_list(rows: list[StockRow]) -> list[dict]:
    return [
        {
            "goodsCode": r.sku,
            "stockNum": r.sellable,
            "withholdNum": r.withheld,
            "shelfStatus": 0 if r.paused else 1,
        }
        for r in rows
    ]


def _int(param: dict, name: str, default: int | None) -> int:
    raw = param.get(name)
    if raw in (None, ""):
        if default is None:
            raise _param_error(f"缺少参数 {name}")
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _param_error(f"{name} 必须是整数") from None
