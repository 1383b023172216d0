"""Taobao/Tmall (TOP) on loopback: `POST /router/rest` (GET works too), per channels.md §1.

Request: form or query parameters `method, app_key, session, timestamp ('yyyy-MM-dd HH:mm:ss',
GMT+8, at most 10 min off), format=json, v=2.0, sign_method (md5 | hmac | hmac-sha256), sign`
plus the method's own parameters.

Signing: every parameter except `sign` whose value is not blank (empty, or only whitespace as
Java's `Character.isWhitespace` has it: the official Java SDK's `StringUtils.isEmpty`, so the
ideographic space U+3000 is blank and the no-break space U+00A0 is not), sorted by key (ASCII),
joined as key+value; md5: UPPER(hex(md5(secret + s + secret))); hmac:
UPPER(hex(HMAC-MD5(secret, s))); hmac-sha256: UPPER(hex(HMAC-SHA256(secret, s))).

Methods:
- `taobao.trades.sold.increment.get(fields, start_modified, end_modified, status?, page_no=1,
  page_size=40 (max 100), use_has_next?)`: trades whose modified time (as of the request) lies in
  [start_modified, end_modified] (both inclusive), ascending by modified. The window may span at
  most one day. Returns `{"trades_sold_increment_get_response": {"total_results": N |
  "has_next": bool, "trades": {"trade": [...]}, "request_id"}}`; `trades` is absent when empty.
  The list is partial (no receiver, promotions, logistics or notes): fetch each trade with
  `taobao.trade.fullinfo.get`. Page backwards from the last page (the platform's advice) or
  expect page shifts when a trade is modified during paging.
- `taobao.trade.fullinfo.get(tid, fields)` -> `{"trade_fullinfo_get_response": {"trade": {...}}}`.
  `fields` is a comma list of top-level trade keys (`orders` brings the lines); every key a
  trade can have is listed in `TRADE_FIELDS`.
- `taobao.top.oaid.decrypt(query_list='[{"tid","oaid","scene"}]' (max 20))` ->
  `{"top_oaid_decrypt_response": {"receiver_list": {"receiver": [{tid, oaid, name, mobile,
  phone, state, city, district, town, address_detail}]}}}`.
- `taobao.top.auth.token.refresh(refresh_token)` (signed, no session) ->
  `{"top_auth_token_refresh_response": {"token_result": "<JSON string: access_token,
  refresh_token, expires_in, re_expires_in, taobao_user_nick, token_type>"}}`.

Trade fields (full): tid (int), tid_str, status, type, seller_nick (= shop id), buyer_open_uid
(= buyer id), buyer_nick (masked), created, modified, pay_time, consign_time, end_time,
total_fee (goods value), post_fee, discount_fee (shop-funded discounts, yuan), coupon_fee
(platform-funded coupons, integer FEN), adjust_fee, payment (= total_fee - discount_fee -
coupon_fee/100 + post_fee), received_payment, buyer_message, seller_memo, receiver_name /
receiver_mobile / receiver_address (masked copies), receiver_phone (""), receiver_state /
receiver_city / receiver_district (plain), receiver_country (ISO code, "CN" domestic), oaid
(decrypt key), promotion_details.promotion_detail[{id, promotion_id (tmall_coupon-<code> for
platform coupons, shopbonus-<code> for shop coupons), promotion_name, discount_fee,
promotion_desc}], customs {hs_code, declared_value (yuan), ...} for cross-border trades,
orders.order[{oid, num_iid, sku_id, outer_iid, outer_sku_id (= sku), title, price, num,
total_fee, discount_fee, payment, divide_order_fee, status, refund_status, and once shipped
logistics_company, invoice_no (tracking number), consign_time, shipping_type}]. Times are
Beijing time; unset fields are omitted.

Status: WAIT_BUYER_PAY (awaiting payment), WAIT_SELLER_SEND_GOODS (paid), WAIT_BUYER_CONFIRM_GOODS
(shipped), TRADE_FINISHED (delivered), TRADE_CLOSED (closed after payment: cancelled or
refunded before shipping), TRADE_CLOSED_BY_TAOBAO (cancelled before payment). After-sale is
shown on the lines: refund_status WAIT_BUYER_RETURN_GOODS (return), WAIT_SELLER_CONFIRM_GOODS
(delivery rejected), SUCCESS (refunded after shipping, or the refund that closed the trade);
NO_REFUND otherwise. So: unified after_sale = trade not closed and a line's refund_status is
not NO_REFUND.

Stock (⚠ sandbox convention: the shape follows TOP, the method set is the sandbox's):
- `taobao.items.inventory.get(page_no=1, page_size=40 (max 100))` -> `{"items_inventory_get_
  response": {"total_results", "items": {"item": [{outer_id (= sku), num (units on sale),
  with_hold_quantity (units frozen), approve_status (onsale | instock: sale paused)}]}}}`.
- `taobao.skus.withhold.update(sku_quantities='[{"outer_id","with_hold_quantity"}]' (max 50))`:
  the units frozen per SKU become these (absolute); `taobao.item.update.delisting(outer_ids)` /
  `taobao.item.update.listing(outer_ids)` (comma list, max 50) pause / lift the sale. Each
  answers the SKUs' new `items`; an unknown outer_id: 15 isv.item-not-exist, nothing changed.

Errors `{"error_response": {"code", "msg", "sub_code", "sub_msg", "request_id"}}` (HTTP 200):
7 App Call Limited (rate-limit fault, sub_msg "This ban will last 1 more seconds"), 15 Remote
service error (isv.invalid-parameter: window over one day or start after end;
isv.trade-not-exist; isv.refresh-token-invalid), 21/22 missing/invalid method, 23 format is
not json, 24 missing sign, 25 Invalid Signature, 26 missing session, 27 Invalid Session
(sub_code invalid-sessionkey; also an expired session), 28/29 missing/invalid app_key,
30/31 missing/invalid timestamp, 32/33 missing/invalid version, 40 missing required argument,
41 invalid argument (page_size over 100, unparsable times, query_list over 20).

Push (TMC message as an HTTP form, ⚠ the real channel is a WebSocket): fields `id, topic,
content (JSON string {tid, oid, status, payment, seller_nick, type}), user_id, user_nick,
pub_time, pub_app_key, timestamp ('yyyy-MM-dd HH:mm:ss' GMT+8), sign_method=md5, sign` with
sign = UPPER(md5(app_secret + sorted key+value of every other field + app_secret)) (the TOP
request signature). Topics taobao_trade_TradeCreate, TradeBuyerPay, TradeSellerShip,
TradeSuccess, TradeClose, TradePartlyRefund, TradeChanged.
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
    bj,
    compact_json,
    customs_fields,
    drop_none,
    fen,
    form_body,
    json_response,
    line_discounts,
    mask_address,
    mask_name,
    mask_phone,
    maybe_int,
    parse_bj,
    request_params,
    split_coupons,
    stable_number,
    yuan,
)
from sandbox.gateways.stock import StockRow
from sandbox.gateways.store import epoch_s

# change kind (common.CHANGE_KINDS) -> push topic (after "taobao_trade_")
PUSH_TOPICS = {
    "created": "TradeCreate", "pay": "TradeBuyerPay", "ship": "TradeSellerShip",
    "deliver": "TradeSuccess", "cancel": "TradeClose", "refund": "TradeClose",
    "after_sale": "TradePartlyRefund", "modified": "TradeChanged",
}  # fmt: skip
LIST_METHOD = "taobao.trades.sold.increment.get"
DETAIL_METHOD = "taobao.trade.fullinfo.get"
DECRYPT_METHOD = "taobao.top.oaid.decrypt"
REFRESH_METHOD = "taobao.top.auth.token.refresh"
STOCK_GET = "taobao.items.inventory.get"
STOCK_WITHHOLD = "taobao.skus.withhold.update"
STOCK_DELIST = "taobao.item.update.delisting"
STOCK_LIST = "taobao.item.update.listing"
STOCK_METHODS = (STOCK_GET, STOCK_WITHHOLD, STOCK_DELIST, STOCK_LIST)
METHODS = (LIST_METHOD, DETAIL_METHOD, DECRYPT_METHOD, REFRESH_METHOD, *STOCK_METHODS)
MAX_STOCK_BATCH = 50
MAX_WINDOW = timedelta(days=1)
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 40
MAX_SKEW = timedelta(minutes=10)
MAX_DECRYPT = 20

TRADE_FIELDS = (
    "tid",
    "tid_str",
    "status",
    "type",
    "seller_nick",
    "buyer_open_uid",
    "buyer_nick",
    "created",
    "modified",
    "pay_time",
    "consign_time",
    "end_time",
    "total_fee",
    "post_fee",
    "discount_fee",
    "coupon_fee",
    "adjust_fee",
    "payment",
    "received_payment",
    "buyer_message",
    "seller_memo",
    "receiver_name",
    "receiver_mobile",
    "receiver_phone",
    "receiver_address",
    "receiver_state",
    "receiver_city",
    "receiver_district",
    "receiver_town",
    "receiver_zip",
    "receiver_country",
    "oaid",
    "promotion_details",
    "customs",
    "orders",
)
LIST_FIELDS = frozenset(
    {
        "tid",
        "tid_str",
        "status",
        "type",
        "seller_nick",
        "buyer_open_uid",
        "created",
        "modified",
        "pay_time",
        "total_fee",
        "post_fee",
        "payment",
        "orders",
    }
)
LIST_LINE_FIELDS = ("oid", "num_iid", "sku_id", "outer_sku_id", "title", "price", "num", "status")


# java.lang.Character.isWhitespace: the space separators but the no-break ones, the line and
# paragraph separators, and the ASCII controls TAB, LF, VT, FF, CR and FS..US
JAVA_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2008\u2009\u200a\u2028\u2029\u205f\u3000"
)


def top_sign(params: dict[str, str], secret: str, sign_method: str) -> str:
    """The TOP signature of `params` (sandbox side); blank values are not signed."""
    joined = "".join(
        f"{k}{v}"
        for k, v in sorted(params.items())
        if k != "sign" and not set(v) <= JAVA_WHITESPACE
    )
    if sign_method == "md5":
        digest = hashlib.md5((secret + joined + secret).encode()).hexdigest()
    elif sign_method == "hmac":
        digest = hmac.new(secret.encode(), joined.encode(), hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(secret.encode(), joined.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(sign_method)
    return digest.upper()


def trade_status(state: OrderState) -> str:
    unified = state.unified
    if unified == "awaiting_payment":
        return "WAIT_BUYER_PAY"
    if unified == "closed":
        return "TRADE_CLOSED" if state.paid else "TRADE_CLOSED_BY_TAOBAO"
    if unified == "paid_pending_review":
        return "WAIT_SELLER_SEND_GOODS"
    if unified == "in_transit":
        return "WAIT_BUYER_CONFIRM_GOODS"
    if unified == "delivered":
        return "TRADE_FINISHED"
    # after-sale: the trade keeps its logistics status, the lines carry the refund
    return "TRADE_FINISHED" if state.delivered_at else "WAIT_BUYER_CONFIRM_GOODS"


def refund_status(state: OrderState) -> str:
    kind = state.after_sale
    if kind == "return":
        return "WAIT_BUYER_RETURN_GOODS"
    if kind == "reject":
        return "WAIT_SELLER_CONFIRM_GOODS"
    if kind == "refund" or (state.unified == "closed" and state.refunded_at):
        return "SUCCESS"
    return "NO_REFUND"


class TopError(Exception):
    def __init__(
        self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None
    ):
        super().__init__(msg)
        self.body = drop_none({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg})


class TaobaoGateway(Gateway):
    channel = "taobao"
    # the world's facts about taobao (see Gateway)
    share = 0.22
    shops = (("62318840", "橙意天猫旗舰店"), ("57102936", "橙意生活淘宝店"))
    push_types = PUSH_TOPICS
    token_field = "session"

    @staticmethod
    def order_number(i: int, t: datetime, s: int) -> str:
        """The world's order number (tid: 19 digits)."""
        return f"2{s % 1_000_000:06d}{i:09d}{s % 1000:03d}"

    @classmethod
    def new_credentials(cls) -> dict[str, str]:
        return {
            "app_key": str(stable_number(secrets.token_hex(8), 8)),
            "app_secret": secrets.token_hex(16),
            "session": "6101" + secrets.token_hex(20),
            "refresh_token": "6102" + secrets.token_hex(20),
        }

    @property
    def secret(self) -> str:
        return self.credentials["app_secret"]

    def routes(self) -> list[Route]:
        return [Route("/router/rest", self.handle, methods=["GET", "POST"])]

    # -- protocol ----------------------------------------------------------------------------
    def error(self, err: TopError) -> Response:
        return json_response({"error_response": {**err.body, "request_id": _request_id()}})

    def rate_limited(self) -> Response:
        return self.error(
            TopError(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-api-access-count",
                "This ban will last 1 more seconds",
            )
        )

    def authenticate(self, p: dict[str, str]) -> str:
        """Check the system parameters; returns the method name."""
        method = p.get("method")
        if not method:
            raise TopError(21, "Missing Method")
        if not p.get("app_key"):
            raise TopError(28, "Missing App Key")
        if p["app_key"] != self.credentials["app_key"]:
            raise TopError(29, "Invalid App Key")
        if not p.get("timestamp"):
            raise TopError(30, "Missing Timestamp")
        try:
            sent = parse_bj(p["timestamp"])
        except ValueError:
            raise TopError(31, "Invalid Timestamp", sub_msg="yyyy-MM-dd HH:mm:ss (GMT+8)") from None
        if abs(sent.timestamp() - time.time()) > MAX_SKEW.total_seconds():
            raise TopError(31, "Invalid Timestamp", sub_msg="timestamp is more than 10 min off")
        if not p.get("v"):
            raise TopError(32, "Missing Version")
        if p["v"] != "2.0":
            raise TopError(33, "Invalid Version")
        if not p.get("sign"):
            raise TopError(24, "Missing Signature")
        sign_method = p.get("sign_method") or "md5"
        if sign_method not in ("md5", "hmac", "hmac-sha256"):
            raise TopError(25, "Invalid Signature", sub_msg="unsupported sign_method")
        if not hmac.compare_digest(p["sign"].upper(), top_sign(p, self.secret, sign_method)):
            raise TopError(25, "Invalid Signature")
        if method not in METHODS:
            raise TopError(22, "Invalid Method")
        if p.get("format", "xml") != "json":
            raise TopError(23, "Invalid Format", sub_msg="the sandbox answers format=json only")
        return method

    async def handle(self, request: Request) -> Response:
        p = await request_params(request)
        try:
            method = self.authenticate(p)
            if method == REFRESH_METHOD:
                return json_response(self.refresh(p))
            session = p.get("session")
            check = self.tokens.check(session)
            if check == "missing":
                raise TopError(26, "Missing Session")
            if check != "ok":
                sub_msg = "session expired" if check == "expired" else "session is invalid"
                raise TopError(27, "Invalid Session", "invalid-sessionkey", sub_msg)
            self.tokens.use(session)
            faulted = await self.fault_gate()
            if faulted is not None:
                return faulted
            now_s = self.now_s()
            if method == LIST_METHOD:
                body = self.increment_get(p, now_s)
            elif method == DETAIL_METHOD:
                body = self.fullinfo_get(p, now_s)
            elif method in STOCK_METHODS:
                body = self.stock_call(method, p)
            else:
                body = self.oaid_decrypt(p)
            return json_response(body)
        except TopError as err:
            return self.error(err)

    # -- methods -------------------------------------------------------------------------------
    def increment_get(self, p: dict[str, str], now_s: int) -> dict:
        fields = _fields(p)
        start, end = _time_arg(p, "start_modified"), _time_arg(p, "end_modified")
        if end < start:
            raise TopError(
                15,
                "Remote service error",
                "isv.invalid-parameter",
                "start_modified must not be after end_modified",
            )
        if end - start > MAX_WINDOW.total_seconds():
            raise TopError(
                15,
                "Remote service error",
                "isv.invalid-parameter",
                "end_modified - start_modified must not exceed one day",
            )
        page_no = _int_arg(p, "page_no", 1, lo=1)
        size = _int_arg(p, "page_size", DEFAULT_PAGE_SIZE, lo=1)
        if size > MAX_PAGE_SIZE:
            raise TopError(
                41,
                "Invalid Arguments",
                "isv.invalid-parameter:page_size",
                f"page_size must be at most {MAX_PAGE_SIZE}",
            )
        wanted = p.get("status") or None

        def window():
            idx, _ = self.store.modified_window(start, end, now_s)
            if wanted:
                keep = [i for i in idx.tolist() if trade_status(self.state_at(i, now_s)) == wanted]
                return np.asarray(keep, dtype=np.int64)
            return idx

        rows, total = self.paged(
            (LIST_METHOD, start, end, wanted), window, (page_no - 1) * size, size, now_s
        )
        trades = [self.render_list(self.state_at(i, now_s), fields) for i in rows]
        body: dict = {"request_id": _request_id()}
        if p.get("use_has_next") == "true":
            body["has_next"] = page_no * size < total
        else:
            body["total_results"] = total
        if trades:
            body["trades"] = {"trade": trades}
        return {"trades_sold_increment_get_response": body}

    def fullinfo_get(self, p: dict[str, str], now_s: int) -> dict:
        fields = _fields(p)
        tid = p.get("tid")
        if not tid:
            raise TopError(40, "Missing Required Arguments", sub_msg="tid")
        state = self.state_of(tid, now_s)
        if state is None:
            raise TopError(
                15, "Remote service error", "isv.trade-not-exist", f"trade {tid} not found"
            )
        trade = {k: v for k, v in self.rendered(state).items() if k in fields}
        return {"trade_fullinfo_get_response": {"trade": trade, "request_id": _request_id()}}

    def stock_call(self, method: str, p: dict[str, str]) -> dict:
        """The stock methods (see the module docstring)."""
        key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        if method == STOCK_GET:
            size = _int_arg(p, "page_size", 40, lo=1)
            if size > MAX_PAGE_SIZE:
                raise TopError(41, "Invalid Arguments", "isv.invalid-parameter:page_size")
            page = _int_arg(p, "page_no", 1, lo=1)
            rows, total = self.stock.page((page - 1) * size, size)
            items = {"item": [_stock_item(r) for r in rows]} if rows else None
            return {key: drop_none({"total_results": total, "items": items})}
        try:
            if method == STOCK_WITHHOLD:
                entries = json.loads(p.get("sku_quantities") or "")
                if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                    raise ValueError
                changes = {str(e["outer_id"]): int(e["with_hold_quantity"]) for e in entries}
            else:
                ids = [x.strip() for x in (p.get("outer_ids") or "").split(",") if x.strip()]
                changes = dict.fromkeys(ids, method == STOCK_DELIST)
        except (ValueError, KeyError, TypeError):
            field = "sku_quantities" if method == STOCK_WITHHOLD else "outer_ids"
            raise TopError(41, "Invalid Arguments", f"isv.invalid-parameter:{field}") from None
        if not changes or len(changes) > MAX_STOCK_BATCH:
            raise TopError(41, "Invalid Arguments", sub_msg=f"1..{MAX_STOCK_BATCH} SKUs per call")
        try:
            if method == STOCK_WITHHOLD:
                rows = self.stock.set_withheld(changes)
            else:
                rows = self.stock.set_paused(changes)
        except KeyError as err:
            raise TopError(
                15, "Remote service error", "isv.item-not-exist", f"outer_id {err.args[0]}"
            ) from None
        return {key: {"items": {"item": [_stock_item(r) for r in rows]}}}

    def oaid_decrypt(self, p: dict[str, str]) -> dict:
        try:
            queries = json.loads(p.get("query_list") or "")
        except json.JSONDecodeError:
            raise TopError(
                41,
                "Invalid Arguments",
                "isv.invalid-parameter:query_list",
                "query_list must be a JSON array of {tid, oaid, scene}",
            ) from None
        if not isinstance(queries, list) or not queries:
            raise TopError(40, "Missing Required Arguments", sub_msg="query_list")
        if len(queries) > MAX_DECRYPT:
            raise TopError(
                41,
                "Invalid Arguments",
                "isv.invalid-parameter:query_list",
                f"at most {MAX_DECRYPT} per call",
            )
        receivers, failed = [], []
        for query in queries:
            tid = str(query.get("tid", ""))
            state = self.state_of(tid, self.now_s())
            if state is None or self.sealer.open(str(query.get("oaid", ""))) != tid:
                failed.append(
                    {
                        "tid": query.get("tid"),
                        "oaid": query.get("oaid"),
                        "error_code": "isv.oaid-invalid",
                    }
                )
                continue
            r = state.order.receiver
            receivers.append(
                {
                    "tid": maybe_int(tid),
                    "oaid": query["oaid"],
                    "name": r.name,
                    "mobile": r.phone,
                    "phone": "",
                    "state": r.province,
                    "city": r.city,
                    "district": r.district,
                    "town": "",
                    "address_detail": r.address,
                }
            )
        body: dict = {"receiver_list": {"receiver": receivers}, "request_id": _request_id()}
        if failed:
            body["failed_list"] = {"failed": failed}
        return {"top_oaid_decrypt_response": body}

    def refresh(self, p: dict[str, str]) -> dict:
        issued = self.tokens.refresh(p.get("refresh_token"))
        if issued is None:
            raise TopError(
                15, "Remote service error", "isv.refresh-token-invalid", "refresh_token is invalid"
            )
        access, refresh = issued
        result = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 86400,
            "re_expires_in": 2592000,
            "taobao_user_nick": "sandbox_shop",
            "token_type": "Bearer",
        }
        return {"top_auth_token_refresh_response": {"token_result": json.dumps(result)}}

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
        """A TMC message as a form, signed like a TOP request (md5)."""
        o = state.order
        no = o.platform_order_no
        content = {
            "tid": int(no) if no.isdigit() else no,
            "oid": int(no) if no.isdigit() else no,
            "status": trade_status(state),
            "payment": yuan(o.paid_amount),
            "seller_nick": o.shop_id,
            "type": "fixed",
        }
        fields = {
            "id": message_id,
            "topic": f"taobao_trade_{PUSH_TOPICS[kind]}",
            "content": compact_json(content),
            "user_id": str(stable_number(o.shop_id, 9)),
            "user_nick": o.shop_id,
            "pub_time": bj(state.modified),
            "pub_app_key": credentials["app_key"],
            "timestamp": bj(sent),
            "sign_method": "md5",
        }
        fields["sign"] = top_sign(fields, credentials["app_secret"], "md5")
        return form_body(fields), dict(FORM_HEADERS)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, state: OrderState) -> dict:
        o = state.order
        no = o.platform_order_no
        status = trade_status(state)
        refund = refund_status(state)
        platform, shop = split_coupons(o)
        discounts = line_discounts(o)
        shipped = state.shipped_at is not None
        carrier = self.shipment_of(o) if shipped else None
        r = o.receiver
        oaid = self.sealer.seal(no)  # an opaque receiver id the decrypt API resolves
        lines = []
        for k, (item, discount) in enumerate(zip(o.items, discounts, strict=True), start=1):
            total = item.price * item.qty
            line = {
                "oid": stable_number(f"{no}:{k}", 18),
                "num_iid": stable_number(item.sku.split("-")[0], 12),
                "sku_id": stable_number(item.sku, 13),
                "outer_iid": item.sku.split("-")[0],
                "outer_sku_id": item.sku,
                "title": item.title or item.sku,
                "price": yuan(item.price),
                "num": item.qty,
                "total_fee": yuan(total),
                "discount_fee": yuan(discount),
                "payment": yuan(total - discount),
                "divide_order_fee": yuan(total - discount),
                "status": status,
                "refund_status": refund,
            }
            if carrier:
                line |= {
                    "logistics_company": carrier[1],
                    "invoice_no": carrier[2],
                    "consign_time": bj(state.shipped_at),
                    "shipping_type": "express",
                }
            lines.append(line)
        end_time = state.closed_at or (state.delivered_at if status == "TRADE_FINISHED" else None)
        promotions = [
            {
                "id": maybe_int(no),
                "promotion_id": ("tmall_coupon-" if c.issuer == "platform" else "shopbonus-")
                + c.code,
                "promotion_name": "天猫购物券" if c.issuer == "platform" else "店铺优惠券",
                "discount_fee": yuan(c.amount),
                "promotion_desc": f"{c.code}:省{yuan(c.amount)}元",
            }
            for c in o.coupons
        ]
        return drop_none(
            {
                "tid": maybe_int(no),
                "tid_str": no,
                "status": status,
                "type": "fixed",
                "seller_nick": o.shop_id,
                "buyer_open_uid": o.buyer_id,
                "buyer_nick": mask_name(o.buyer_id),
                "created": bj(o.created_at),
                "modified": bj(state.modified),
                "pay_time": bj(state.paid_at),
                "consign_time": bj(state.shipped_at),
                "end_time": bj(end_time),
                "total_fee": yuan(o.goods_value),
                "post_fee": yuan(o.freight),
                "discount_fee": yuan(shop),
                "coupon_fee": fen(platform),
                "adjust_fee": "0.00",
                "payment": yuan(o.paid_amount),
                "received_payment": yuan(o.paid_amount) if status == "TRADE_FINISHED" else "0.00",
                "buyer_message": o.buyer_note,
                "seller_memo": o.seller_note,
                "receiver_name": mask_name(r.name),
                "receiver_mobile": mask_phone(r.phone),
                "receiver_phone": "",
                "receiver_address": mask_address(r.address),
                "receiver_state": r.province,
                "receiver_city": r.city,
                "receiver_district": r.district,
                "receiver_town": "",
                "receiver_zip": "",
                "receiver_country": o.country,
                "oaid": oaid,
                "promotion_details": {"promotion_detail": promotions} if promotions else None,
                "customs": customs_fields(o),
                "orders": {"order": lines},
            }
        )

    def render_list(self, state: OrderState, fields: frozenset[str]) -> dict:
        full = self.rendered(state)
        trade = {k: v for k, v in full.items() if k in LIST_FIELDS and k in fields}
        if "orders" in trade:
            trade["orders"] = {
                "order": [
                    {k: line[k] for k in LIST_LINE_FIELDS} for line in full["orders"]["order"]
                ]
            }
        return trade


def _request_id() -> str:
    return secrets.token_hex(6)


def _stock_item(row: StockRow) -> dict:
    return {
        "outer_id": row.sku,
        "num": row.sellable,
        "with_hold_quantity": row.withheld,
        "approve_status": "instock" if row.paused else "onsale",
    }


def _fields(p: dict[str, str]) -> frozenset[str]:
    raw = p.get("fields")
    if not raw:
        raise TopError(40, "Missing Required Arguments", sub_msg="fields")
    names = {f.strip() for f in raw.split(",") if f.strip()}
    # "orders.oid" style sub-fields select the lines as a whole
    return frozenset(names | {f.split(".")[0] for f in names})


def _time_arg(p: dict[str, str], name: str) -> int:
    if not p.get(name):
        raise TopError(40, "Missing Required Arguments", sub_msg=name)
    try:
        return epoch_s(parse_bj(p[name]))
    except ValueError:
        raise TopError(
            41,
            "Invalid Arguments",
            f"isv.invalid-parameter:{name}",
            f"{name} must be yyyy-MM-dd HH:mm:ss",
        ) from None


def _int_arg(p: dict[str, str], name: str, default: int, *, lo: int) -> int:
    raw = p.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if value < lo:
        raise TopError(
            41,
            "Invalid Arguments",
            f"isv.invalid-parameter:{name}",
            f"{name} must be an integer >= {lo}",
        )
    return value
