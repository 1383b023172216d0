"""Douyin shop (抖店) on loopback, per channels.md §3: `POST /<method with dots as slashes>`.

Request: query string `app_key, method, access_token, timestamp (unix seconds, or
'yyyy-MM-dd HH:mm:ss' Beijing; at most 10 min off ⚠ chosen), v=2, sign_method (hmac-sha256 |
md5, default md5), sign`; body: the `param_json` JSON object (may be empty: `{}`).

Signing: pj = the body re-serialised as the official Go SDK writes it: keys sorted, compact, no
ASCII/HTML escaping, U+2028/U+2029 escaped, floats Go's way (2.0 -> `2`, 1e-7 -> `1e-7`);
p = secret + "app_key"+app_key + "method"+method + "param_json"+pj + "timestamp"+timestamp +
"v"+"2" + secret; sign = lowercase hex HMAC-SHA256(key=secret, p) or md5(p). `access_token`
is not signed.

Methods:
- `order.searchList` (`POST /order/searchList`): `update_time_start/update_time_end` (unix s,
  the incremental way) or `create_time_start/create_time_end`, at most **7 days** apart (⚠
  chosen; the window ends at now when the end is omitted); `order_by` create_time (default) |
  update_time; `order_asc` (default false: newest first); `page` from **0**; `size` 1..100
  (default 10); `order_status` CSV filter. -> `{"code": 10000, "msg": "success", "sub_code": "",
  "sub_msg": "", "log_id", "data": {"page", "size", "total", "shop_order_list": [...]}}`.
  The list is partial (no lines, receiver, logistics, notes or promotion split): fetch each
  order with `order.orderDetail`.
- `order.orderDetail` (`{"shop_order_id"}`) -> `data.shop_order_detail`.
- `order.batchDecrypt` (`{"cipher_infos": [{"auth_id": order_id, "cipher_text"}]}`, max 50) ->
  `data.decrypt_infos[{auth_id, cipher_text, decrypt_text, err_no, err_msg}]`.
- `token.refresh` (`{"refresh_token", "grant_type": "refresh_token"}`, signed, no
  access_token) -> `data{access_token, expires_in, refresh_token, scope, shop_id, shop_name}`.
- Stock (⚠ sandbox convention in the doudian shape): `sku.stockList` (`{"page" (from 0),
  "size" (max 100)}`) -> `data{page, size, total, list[{out_sku_id (= sku), stock_num (units
  on sale), prehold_stock_num (units frozen), status (0 on sale, 1 off)}]}`;
  `sku.preholdStockBatch` (`{"sku_list": [{out_sku_id, prehold_stock_num}]}`, max 50): the
  units frozen become these (absolute); `product.editStatusBatch` (`{"out_sku_ids": [...],
  "status": 1 | 0}`, max 50): pause / lift the sale. Both answer `data.list` of the SKUs; an
  unknown SKU: 50002 isv.business-failed, nothing changed.

Shop order fields (detail): order_id, shop_id, order_status, order_status_desc, main_status,
main_status_desc, create_time, update_time, pay_time, ship_time, finish_time (unix s),
order_amount (goods value), promotion_amount (= shop + platform + talent), promotion_shop_amount,
promotion_platform_amount, promotion_talent_amount (0), post_amount, modify_amount (0),
pay_amount (= order_amount - promotion_amount + post_amount), all integer FEN; doudian_open_id
(= buyer id), buyer_words, seller_words, encrypt_post_receiver, encrypt_post_tel,
mask_post_receiver, mask_post_tel, post_addr{province, city, town (= district), street: {id,
name}, detail (masked), encrypt_detail}, mask_post_addr, country (ISO), customs{hs_code,
declared_value (yuan), ...}, logistics_info[{tracking_no, company, company_name, ship_time}],
sku_order_list[{order_id, parent_order_id, product_id, sku_id, out_sku_id (= sku),
out_product_id, product_name, item_num, origin_amount (unit price), sum_amount, pay_amount,
promotion_amount, after_sale_info{after_sale_status, after_sale_type, refund_status}}],
promotion_detail[{code, sponsor (platform | shop), amount}].

Status: 1 awaiting payment, 2 paid (备货中), 3 shipped, 5 completed (delivered), 4 cancelled
(closed). After-sale keeps 3/5 and sets after_sale_info on the lines: after_sale_status 7
return in progress, 12 refunded, 27 delivery rejected (⚠ chosen codes; 0 = none).

Errors `{"code", "msg", "sub_code", "sub_msg", "log_id", "data": null}` (HTTP 200): 40001
missing parameter; 40003 with sub_code isv.signature-invalid, isv.timestamp-invalid,
isv.access-token-expired, isv.access-token-no-existed, isv.app-key-invalid,
isv.parameter-invalid (window over 7 days, size over 100), isv.refresh-token-invalid; 50002
isv.business-failed (no such order); 60000 isv.rate-limited (rate-limit fault, sub_msg says
retry after 1 s); 70000 isv.api-offline (unknown method).

Push: JSON array body `[{"tag", "msg_id", "data": "<JSON string>", "timestamp"}]`; headers
`app-id` (app_key) and `event-sign` = lowercase hex md5(app_key + raw body + app_secret). Tags:
100 created, 110 paid, 102 shipped, 103 completed, 106 cancelled/closed, 200 after-sale (⚠
chosen), 105 modified. data: `{p_id, s_ids, shop_id, order_status, order_type, biz,
create_time, update_time, pay_time}` (unix s). `timestamp` (send time, unix s) is a sandbox
addition for replay windows.
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
    JSON_HEADERS,
    OrderState,
    PushBody,
    compact_json,
    customs_fields,
    drop_none,
    fen,
    json_response,
    line_discounts,
    mask_address,
    mask_name,
    mask_phone,
    maybe_int,
    md5_hex,
    parse_bj,
    split_coupons,
    stable_number,
    unix_s,
)
from sandbox.gateways.sdk_json import sdk_json
from sandbox.gateways.stock import StockRow

STOCK_LIST, STOCK_PREHOLD, STOCK_STATUS = (
    "sku.stockList", "sku.preholdStockBatch", "product.editStatusBatch",
)  # fmt: skip
STOCK_METHODS = (STOCK_LIST, STOCK_PREHOLD, STOCK_STATUS)
METHODS = (
    "order.searchList", "order.orderDetail", "order.batchDecrypt", "token.refresh",
    *STOCK_METHODS,
)  # fmt: skip
MAX_STOCK_BATCH = 50
MAX_WINDOW = timedelta(days=7)
MAX_PAGE_SIZE = 100
MAX_SKEW = timedelta(minutes=10)
MAX_DECRYPT = 50
# change kind (common.CHANGE_KINDS) -> push message tag
PUSH_TAGS = {
    "created": "100", "pay": "110", "ship": "102", "deliver": "103", "cancel": "106",
    "refund": "106", "after_sale": "200", "modified": "105",
}  # fmt: skip
STATUS_DESC = {1: "待支付", 2: "备货中", 3: "已发货", 4: "已取消", 5: "已完成"}
AFTER_SALE = {"return": (7, 0, 1), "refund": (12, 1, 3), "reject": (27, 2, 3)}
LIST_FIELDS = frozenset(
    {
        "order_id",
        "shop_id",
        "order_status",
        "order_status_desc",
        "main_status",
        "main_status_desc",
        "create_time",
        "update_time",
        "pay_time",
        "finish_time",
        "order_amount",
        "pay_amount",
        "post_amount",
        "promotion_amount",
        "doudian_open_id",
    }
)


def canonical_param_json(params: object) -> str:
    return sdk_json(params, sort=True, go=True)


def douyin_sign(
    app_key: str,
    method: str,
    param_json: str,
    timestamp: str,
    secret: str,
    sign_method: str = "md5",
) -> str:
    body = f"app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2"
    p = secret + body + secret
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), p.encode(), hashlib.sha256).hexdigest()
    return hashlib.md5(p.encode()).hexdigest()


_STATUS = {
    "awaiting_payment": 1,
    "paid_pending_review": 2,
    "closed": 4,
    "in_transit": 3,
    "delivered": 5,
}


def order_status(state: OrderState) -> int:
    status = _STATUS.get(state.unified)
    return (
        status if status is not None else 5 if state.delivered_at else 3
    )  # after-sale keeps the logistics status


class DouyinError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str = "", sub_msg: str = ""):
        super().__init__(msg)
        self.body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _invalid(sub_code: str, sub_msg: str) -> DouyinError:
    return DouyinError(40003, "参数不合法", sub_code, sub_msg)


class DouyinGateway(Gateway):
    channel = "douyin"
    # the world's facts about douyin (see Gateway)
    share = 0.16
    shops = (("48830127", "橙意抖音官方旗舰店"),)
    push_types = PUSH_TAGS
    seal_prefix = "#"
    seal_suffix = "#1##"

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (order_id: 19 digits)."""
        return f"69{s % 100_000:05d}{i:09d}{s % 1000:03d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "app_key": str(stable_number(secrets.token_hex(8), 19)),
            "app_secret": secrets.token_hex(18),
            "access_token": secrets.token_hex(18),
            "refresh_token": secrets.token_hex(18),
        }

    @property
    def secret(self) -> str:
        return self.credentials["app_secret"]

    def routes(self) -> list[Route]:
        return [Route("/" + m.replace(".", "/"), self.handle, methods=["POST"]) for m in METHODS]

    def envelope(self, body: dict, data: object = None) -> Response:
        return json_response({**body, "log_id": secrets.token_hex(10), "data": data})

    def rate_limited(self) -> Response:
        err = DouyinError(60000, "请求过于频繁", "isv.rate-limited", "调用频率超限，请 1 秒后重试")
        return self.envelope(err.body)

    async def handle(self, request: Request) -> Response:
        q = dict(request.query_params)
        path_method = request.url.path.strip("/").replace("/", ".")
        try:
            method, params = self.authenticate(q, path_method, await request.body())
            if method == "token.refresh":
                return self.envelope(_OK, self.refresh(params))
            token = q.get("access_token")
            check = self.tokens.check(token)
            if check == "missing":
                raise DouyinError(40001, "缺少参数", "isv.missing-parameter", "access_token")
            if check == "expired":
                raise _invalid("isv.access-token-expired", "access_token 已过期")
            if check == "invalid":
                raise _invalid("isv.access-token-no-existed", "access_token 不存在")
            self.tokens.use(token)
            faulted = await self.fault_gate()
            if faulted is not None:
                return faulted
            now_s = self.now_s()
            if method == "order.searchList":
                data = self.search_list(params, now_s)
            elif method == "order.orderDetail":
                data = self.order_detail(params, now_s)
            elif method in STOCK_METHODS:
                data = self.stock_call(method, params)
            else:
                data = self.batch_decrypt(params, now_s)
            return self.envelope(_OK, data)
        except DouyinError as err:
            return self.envelope(err.body)

    def authenticate(self, q: dict[str, str], path_method: str, body: bytes) -> tuple[str, dict]:
        for name in ("app_key", "method", "timestamp", "sign"):
            if not q.get(name):
                raise DouyinError(40001, "缺少参数", "isv.missing-parameter", name)
        method = q["method"]
        if method != path_method or method not in METHODS:
            raise DouyinError(70000, "API 已下线或不存在", "isv.api-offline", method)
        if q["app_key"] != self.credentials["app_key"]:
            raise _invalid("isv.app-key-invalid", "app_key 不存在")
        if q.get("v", "2") != "2":
            raise _invalid("isv.parameter-invalid", "v must be 2")
        stamp = q["timestamp"]
        try:
            sent = float(stamp) if stamp.isdigit() else parse_bj(stamp).timestamp()
        except ValueError:
            raise _invalid("isv.timestamp-invalid", "timestamp 格式错误") from None
        if abs(sent - time.time()) > MAX_SKEW.total_seconds():
            raise _invalid("isv.timestamp-invalid", "timestamp 与服务器时间相差超过 10 分钟")
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise _invalid("isv.parameter-invalid", "param_json 不是合法的 JSON") from None
        if not isinstance(params, dict):
            raise _invalid("isv.parameter-invalid", "param_json 必须是 JSON 对象")
        sign_method = q.get("sign_method") or "md5"
        if sign_method not in ("md5", "hmac-sha256"):
            raise _invalid("isv.signature-invalid", "sign_method 不支持")
        expected = douyin_sign(
            q["app_key"], method, canonical_param_json(params), stamp, self.secret, sign_method
        )
        if not hmac.compare_digest(q["sign"].lower(), expected):
            raise _invalid("isv.signature-invalid", "签名无效")
        return method, params

    # -- methods -------------------------------------------------------------------------------
    def stock_call(self, method: str, params: dict) -> dict:
        """The stock methods (see the module docstring)."""
        if method == STOCK_LIST:
            page = _int(params, "page", 0)
            size = _int(params, "size", 10)
            if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
                raise _invalid("isv.parameter-invalid", "page 从 0 开始；size 取值 1..100")
            rows, total = self.stock.page(page * size, size)
            return {"page": page, "size": size, "total": total, "list": _stock_list(rows)}
        try:
            if method == STOCK_PREHOLD:
                changes = {
                    str(e["out_sku_id"]): int(e["prehold_stock_num"]) for e in params["sku_list"]
                }
            else:
                status = int(params["status"])
                if status not in (0, 1):
                    raise ValueError
                changes = {str(x): status == 1 for x in params["out_sku_ids"]}
        except (KeyError, TypeError, ValueError):
            raise _invalid(
                "isv.parameter-invalid", "sku_list / out_sku_ids / status 无效"
            ) from None
        if not changes or len(changes) > MAX_STOCK_BATCH:
            raise _invalid("isv.parameter-invalid", f"每次 1..{MAX_STOCK_BATCH} 个 SKU")
        try:
            if method == STOCK_PREHOLD:
                rows = self.stock.set_withheld(changes)
            else:
                rows = self.stock.set_paused(changes)
        except KeyError as err:
            raise DouyinError(
                50002, "业务处理失败", "isv.business-failed", f"商品不存在: {err.args[0]}"
            ) from None
        return {"list": _stock_list(rows)}

    def search_list(self, params: dict, now_s: int) -> dict:
        by = "update" if "update_time_start" in params or "update_time_end" in params else "create"
        if by == "create" and "create_time_start" not in params and "create_time_end" not in params:
            raise DouyinError(
                40001,
                "缺少参数",
                "isv.missing-parameter",
                "update_time_start/update_time_end or create_time_start/create_time_end",
            )
        start = _int(params, f"{by}_time_start", 0)
        end = _int(params, f"{by}_time_end", now_s)
        if end < start:
            raise _invalid("isv.parameter-invalid", f"{by}_time_start 不能晚于 {by}_time_end")
        if end - start > MAX_WINDOW.total_seconds():
            raise _invalid("isv.parameter-invalid", f"{by}_time 时间跨度不能超过 7 天")
        page = _int(params, "page", 0)
        size = _int(params, "size", 10)
        if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
            raise _invalid("isv.parameter-invalid", "page 从 0 开始；size 取值 1..100")
        order_by = params.get("order_by") or "create_time"
        if order_by not in ("create_time", "update_time"):
            raise _invalid("isv.parameter-invalid", "order_by 取值 create_time 或 update_time")
        ascending = params.get("order_asc") in (True, "true", 1, "1")
        statuses = {int(s) for s in str(params.get("order_status") or "").split(",") if s.strip()}

        def window() -> np.ndarray:
            if by == "update":
                idx, _ = self.store.modified_window(start, end, now_s)
            else:
                idx, _ = self.store.created_window(start, end, now_s)
            if statuses:
                keep = [
                    i for i in idx.tolist() if order_status(self.state_at(i, now_s)) in statuses
                ]
                idx = np.asarray(keep, dtype=np.int64)
            if order_by == "create_time" and by == "update":
                idx = idx[np.argsort(self.store.created[idx], kind="stable")]
            elif order_by == "update_time" and by == "create":
                mods = np.asarray([self.store.modified_s(i, now_s) for i in idx.tolist()], np.int64)
                idx = idx[np.argsort(mods, kind="stable")]
            return idx if ascending else idx[::-1]

        key = ("search", by, start, end, order_by, ascending, tuple(sorted(statuses)))
        rows, total = self.paged(key, window, page * size, size, now_s)
        listed = []
        for i in rows:
            full = self.rendered(self.state_at(i, now_s))
            listed.append({k: v for k, v in full.items() if k in LIST_FIELDS})
        return {"page": page, "size": size, "total": total, "shop_order_list": listed}

    def order_detail(self, params: dict, now_s: int) -> dict:
        order_id = str(params.get("shop_order_id") or "")
        if not order_id:
            raise DouyinError(40001, "缺少参数", "isv.missing-parameter", "shop_order_id")
        state = self.state_of(order_id, now_s)
        if state is None:
            raise DouyinError(50002, "业务处理失败", "isv.business-failed", "订单不存在")
        return {"shop_order_detail": self.rendered(state)}

    def batch_decrypt(self, params: dict, now_s: int) -> dict:
        infos = params.get("cipher_infos")
        if not isinstance(infos, list) or not infos or len(infos) > MAX_DECRYPT:
            raise _invalid("isv.parameter-invalid", f"cipher_infos 需要 1..{MAX_DECRYPT} 条")
        out = []
        for info in infos:
            auth_id = str(info.get("auth_id", ""))
            cipher = str(info.get("cipher_text", ""))
            plain = self.sealer.open(cipher) if self.state_of(auth_id, now_s) else None
            out.append(
                {
                    "auth_id": auth_id,
                    "cipher_text": cipher,
                    "decrypt_text": plain or "",
                    "err_no": 0 if plain is not None else 300008,
                    "err_msg": "" if plain is not None else "解密失败",
                }
            )
        return {"decrypt_infos": out, "custom_err": {"err_code": 0, "err_msg": ""}}

    def refresh(self, params: dict) -> dict:
        if params.get("grant_type") != "refresh_token":
            raise _invalid("isv.parameter-invalid", "grant_type 必须是 refresh_token")
        issued = self.tokens.refresh(params.get("refresh_token"))
        if issued is None:
            raise _invalid("isv.refresh-token-invalid", "refresh_token 无效")
        access, refresh = issued
        return {
            "access_token": access,
            "expires_in": 604800,
            "refresh_token": refresh,
            "scope": "SCOPE",
            "shop_id": 4463798,
            "shop_name": "沙盒小店",
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
        """One message in a JSON array, signed over the raw body (see the module docstring)."""
        o = state.order
        no = o.platform_order_no
        data = {
            "p_id": int(no) if no.isdigit() else no,
            "s_ids": [f"{no}{k}" for k in range(1, len(o.items) + 1)],
            "shop_id": o.shop_id,
            "order_status": order_status(state),
            "order_type": 0,
            "biz": 2,
            "create_time": unix_s(o.created_at),
            "update_time": unix_s(state.modified),
            "pay_time": unix_s(state.paid_at) or 0,
        }
        message = {
            "tag": PUSH_TAGS[kind],
            "msg_id": message_id,
            "data": compact_json(data),
            "timestamp": unix_s(sent),
        }
        body = compact_json([message])
        sign = md5_hex(credentials["app_key"] + body + credentials["app_secret"])
        headers = {**JSON_HEADERS, "app-id": credentials["app_key"], "event-sign": sign}
        return body.encode(), headers

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        status = order_status(state)
        platform, shop = split_coupons(o)
        r = o.receiver
        seal = self.sealer.seal
        after = AFTER_SALE.get(state.after_sale or "", (0, 0, 0))
        finish = state.closed_at if status == 4 else state.delivered_at if status == 5 else None
        lines = []
        for k, (item, discount) in enumerate(zip(o.items, line_discounts(o), strict=True), 1):
            total = item.price * item.qty
            lines.append(
                {
                    "order_id": f"{no}{k}",
                    "parent_order_id": no,
                    "product_id": str(stable_number(item.sku.split("-")[0], 19)),
                    "sku_id": stable_number(item.sku, 13),
                    "out_product_id": item.sku.split("-")[0],
                    "out_sku_id": item.sku,
                    "product_name": item.title or item.sku,
                    "item_num": item.qty,
                    "origin_amount": fen(item.price),
                    "sum_amount": fen(total),
                    "promotion_amount": fen(discount),
                    "pay_amount": fen(total - discount),
                    "after_sale_info": {
                        "after_sale_status": after[0],
                        "after_sale_type": after[1],
                        "refund_status": after[2],
                    },
                }
            )
        addr = {
            "province": {"id": "", "name": r.province},
            "city": {"id": "", "name": r.city},
            "town": {"id": "", "name": r.district},
            "street": {"id": "", "name": ""},
        }
        logistics = []
        if state.shipped:
            code, name, tracking = self.shipment_of(o)
            logistics.append(
                {
                    "tracking_no": tracking,
                    "company": code.lower(),
                    "company_name": name,
                    "ship_time": unix_s(state.shipped_at),
                }
            )
        return drop_none(
            {
                "order_id": no,
                "shop_id": maybe_int(o.shop_id),
                "order_status": status,
                "order_status_desc": STATUS_DESC[status],
                "main_status": status,
                "main_status_desc": STATUS_DESC[status],
                "create_time": unix_s(o.created_at),
                "update_time": unix_s(state.modified),
                "pay_time": unix_s(state.paid_at) or 0,
                "ship_time": unix_s(state.shipped_at) or 0,
                "finish_time": unix_s(finish) or 0,
                "order_amount": fen(o.goods_value),
                "promotion_amount": fen(platform + shop),
                "promotion_shop_amount": fen(shop),
                "promotion_platform_amount": fen(platform),
                "promotion_talent_amount": 0,
                "post_amount": fen(o.freight),
                "modify_amount": 0,
                "pay_amount": fen(o.paid_amount),
                "doudian_open_id": o.buyer_id,
                "buyer_words": o.buyer_note or "",
                "seller_words": o.seller_note or "",
                "encrypt_post_receiver": seal(r.name),
                "encrypt_post_tel": seal(r.phone),
                "mask_post_receiver": mask_name(r.name),
                "mask_post_tel": mask_phone(r.phone),
                "post_addr": {
                    **addr,
                    "detail": mask_address(r.address),
                    "encrypt_detail": seal(r.address),
                },
                "mask_post_addr": {**addr, "detail": mask_address(r.address)},
                "country": o.country,
                "customs": customs_fields(o),
                "logistics_info": logistics,
                "sku_order_list": lines,
                "promotion_detail": [
                    {"code": c.code, "sponsor": c.issuer, "amount": fen(c.amount)}
                    for c in o.coupons
                ],
            }
        )


_OK = {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": ""}


def _stock_list(rows: list[StockRow]) -> list[dict]:
    return [
        {
            "out_sku_id": r.sku,
            "stock_num": r.sellable,
            "prehold_stock_num": r.withheld,
            "status": 1 if r.paused else 0,
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
        raise _invalid("isv.parameter-invalid", f"{name} 必须是整数") from None
