"""The six marketplace gateways over real HTTP, called by clients written here from
docs/channels.md (not from the gateways' code): each signs requests its own way,
so a signing, paging or format mistake on either side fails a test.

Per platform: the signing test vectors; a correct signature is served and a wrong one gets the
platform's error; wrong and expired tokens get the token error and the refresh flow issues a
working token; a window over the platform's maximum is refused; paging a window covers every
order exactly once; the detail call shows the order's state at request time with the right
amounts; the decrypt API returns the clear receiver; and every fault kind can be switched on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import ClassVar

import httpx
import pytest

from sandbox.faults import FaultConfig
from sandbox.gateways import GATEWAYS
from sandbox.gateways.samples import order_number, sample_orders
from sandbox.model import Order
from sandbox.server import serve_app

BJ = timezone(timedelta(hours=8))


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def bj_text(moment: datetime) -> str:
    return moment.astimezone(BJ).strftime("%Y-%m-%d %H:%M:%S")


# -- independent signing (channels.md §0-§6) -------------------------------------------------------
def top_signature(params: dict[str, str], secret: str, method: str = "md5") -> str:
    """TOP: sort by key, k+v of non-empty params (sign excluded)."""
    s = "".join(k + params[k] for k in sorted(params) if k != "sign" and params[k] != "")
    if method == "md5":
        return md5_hex(secret + s + secret).upper()
    algo = hashlib.md5 if method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode(), s.encode(), algo).hexdigest().upper()


def jd_signature(params: dict[str, str], secret: str) -> str:
    s = "".join(k + params[k] for k in sorted(params) if k != "sign" and params[k] != "")
    return md5_hex(secret + s + secret).upper()


def douyin_signature(app_key: str, method: str, pj: str, ts: str, secret: str, hmac_: bool) -> str:
    p = secret + "app_key" + app_key + "method" + method + "param_json" + pj
    p += "timestamp" + ts + "v" + "2" + secret
    if hmac_:
        return hmac.new(secret.encode(), p.encode(), hashlib.sha256).hexdigest()
    return md5_hex(p)


def pdd_signature(params: dict, secret: str) -> str:
    def text(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return str(value)

    s = "".join(
        k + text(params[k]) for k in sorted(params) if k != "sign" and params[k] is not None
    )
    return md5_hex(secret + s + secret).upper()


def kuaishou_signature(params: dict[str, str], sign_secret: str, method: str = "MD5") -> str:
    s = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    s += "&signSecret=" + sign_secret
    if method == "HMAC_SHA256":
        return base64.b64encode(
            hmac.new(sign_secret.encode(), s.encode(), hashlib.sha256).digest()
        ).decode()
    return md5_hex(s)


def test_pdd_signing_vector() -> None:
    params = {
        "access_token": "asd78172s8ds9a921j9qqwda12312w1w21211",
        "client_id": "1",
        "data_type": "XML",
        "order_status": "1",
        "page": "1",
        "page_size": "10",
        "timestamp": "1480411125",
        "type": "pdd.order.number.list.get",
    }
    assert pdd_signature(params, "testSecret") == "E4DE3ED21002510DED352819E7AE6775"
    from sandbox.gateways.pdd import pdd_sign  # the gateway agrees with the vector too

    assert pdd_sign(params, "testSecret") == "E4DE3ED21002510DED352819E7AE6775"


def test_jd_signing_vector() -> None:
    params = {
        "360buy_param_json": '{"end_date":null,"optional_fields":null,'
        '"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}',
        "access_token": "yourtoken",
        "app_key": "yourappkey",
        "method": "jingdong.pop.order.search",
        "timestamp": "2021-05-07 09:20:39.683+0800",
        "v": "2.0",
    }
    assert jd_signature(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"
    from sandbox.gateways.jd import jd_sign

    assert jd_sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"


# -- the clients -----------------------------------------------------------------------------------
class Client:
    """A minimal independent client: list a window page by page, fetch details, decrypt."""

    channel: ClassVar[str]
    max_window: ClassVar[timedelta]
    codes: ClassVar[dict[str, str]]  # sign / token / window / rate
    cursor_paging: ClassVar[bool] = False

    def __init__(self, base_url: str, creds: dict[str, str], timeout: float = 10.0) -> None:
        self.base = base_url
        self.creds = dict(creds)
        self.http = httpx.Client(timeout=timeout)
        self.tamper = False
        self.skew = timedelta(0)

    def token_key(self) -> str:
        return "session" if self.channel == "taobao" else "access_token"

    @property
    def token(self) -> str:
        return self.creds[self.token_key()]

    @token.setter
    def token(self, value: str) -> None:
        self.creds[self.token_key()] = value

    def bad(self, sign: str) -> str:
        return sign[:-1] + ("0" if sign[-1] != "0" else "1") if self.tamper else sign

    # per platform
    def error(self, body: dict) -> str | None: ...
    def page(self, start: datetime, end: datetime, page, size: int) -> tuple[list[str], object]: ...
    def detail(self, no: str) -> dict: ...
    def facts(self, order: dict) -> tuple[str, Decimal, Decimal]: ...
    def clear_name(self, no: str, order: dict) -> str: ...
    def refresh(self) -> str: ...

    # shared
    def forward(self, start: datetime, end: datetime, size: int) -> list[str]:
        """Every row of a window, pages (or cursor) forwards."""
        rows: list[str] = []
        position: object = self.first_page
        while True:
            got, nxt = self.page(start, end, position, size)
            rows += got
            if nxt is None:
                return rows
            position = nxt

    first_page: ClassVar[object] = 1


class Taobao(Client):
    channel = "taobao"
    max_window = timedelta(days=1)
    codes = {"sign": "25", "token": "27", "window": "15", "rate": "7"}

    def call(self, method: str, biz: dict[str, str], sign_method: str = "md5") -> dict:
        params = {
            "method": method,
            "app_key": self.creds["app_key"],
            "session": self.token,
            "timestamp": bj_text(datetime.now(UTC) + self.skew),
            "format": "json",
            "v": "2.0",
            "sign_method": sign_method,
            **biz,
        }
        params["sign"] = self.bad(top_signature(params, self.creds["app_secret"], sign_method))
        response = self.http.post(f"{self.base}/router/rest", data=params)
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        err = body.get("error_response")
        return str(err["code"]) if err else None

    def page(self, start, end, page, size):
        body = self.call(
            "taobao.trades.sold.increment.get",
            {
                "fields": "tid,tid_str,modified",
                "start_modified": bj_text(start),
                "end_modified": bj_text(end),
                "page_no": str(page),
                "page_size": str(size),
            },
        )
        data = body["trades_sold_increment_get_response"]
        rows = [t["tid_str"] for t in data.get("trades", {}).get("trade", [])]
        self.total = data["total_results"]
        return rows, (page + 1 if page * size < data["total_results"] else None)

    def detail(self, no: str) -> dict:
        fields = (
            "tid_str,status,payment,total_fee,post_fee,discount_fee,coupon_fee,oaid,orders,modified"
        )
        body = self.call("taobao.trade.fullinfo.get", {"tid": no, "fields": fields})
        return body["trade_fullinfo_get_response"]["trade"]

    def facts(self, trade: dict) -> tuple[str, Decimal, Decimal]:
        status = trade["status"]
        refunds = {line["refund_status"] for line in trade["orders"]["order"]}
        if status == "WAIT_BUYER_PAY":
            unified = "awaiting_payment"
        elif status.startswith("TRADE_CLOSED"):
            unified = "closed"
        elif refunds - {"NO_REFUND"}:
            unified = "after_sale"
        else:
            unified = {
                "WAIT_SELLER_SEND_GOODS": "paid_pending_review",
                "WAIT_BUYER_CONFIRM_GOODS": "in_transit",
                "TRADE_FINISHED": "delivered",
            }[status]
        return unified, Decimal(trade["payment"]), Decimal(trade["total_fee"])

    def clear_name(self, no: str, order: dict) -> str:
        query = json.dumps([{"tid": no, "oaid": order["oaid"], "scene": "1001"}])
        body = self.call("taobao.top.oaid.decrypt", {"query_list": query})
        return body["top_oaid_decrypt_response"]["receiver_list"]["receiver"][0]["name"]

    def refresh(self) -> str:
        body = self.call(
            "taobao.top.auth.token.refresh", {"refresh_token": self.creds["refresh_token"]}
        )
        return json.loads(body["top_auth_token_refresh_response"]["token_result"])["access_token"]


class Jd(Client):
    channel = "jd"
    max_window = timedelta(days=28)
    codes = {"sign": "12", "token": "19", "window": "10100009", "rate": "2"}

    def call(self, method: str, biz: dict) -> dict:
        stamp = (datetime.now(UTC) + self.skew).astimezone(BJ)
        params = {
            "method": method,
            "app_key": self.creds["app_key"],
            "access_token": self.token,
            "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S.")
            + f"{stamp.microsecond // 1000:03d}+0800",
            "v": "2.0",
            "360buy_param_json": json.dumps(biz),
        }
        params["sign"] = self.bad(jd_signature(params, self.creds["app_secret"]))
        response = self.http.post(f"{self.base}/routerjson", data=params)
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        if "error_response" in body:
            return str(body["error_response"]["code"])
        for value in body.values():
            for inner in value.values() if isinstance(value, dict) else ():
                result = inner.get("apiResult") if isinstance(inner, dict) else None
                if result and not result["success"]:
                    return str(result["numberCode"])
        return None

    def page(self, start, end, page, size):
        body = self.call(
            "jingdong.pop.order.enSearch",
            {
                "start_date": bj_text(start),
                "end_date": bj_text(end),
                "optional_fields": "orderId,modified",
                "page": str(page),
                "page_size": str(size),
            },
        )
        result = body["jingdong_pop_order_enSearch_responce"]["searchorderinfo_result"]
        rows = [o["orderId"] for o in result["orderInfoList"]]
        return rows, (page + 1 if page * size < result["orderTotal"] else None)

    def detail(self, no: str) -> dict:
        fields = (
            "orderId,orderState,orderPayment,orderTotalPrice,oaid,consigneeInfo,afsStatus,modified"
        )
        body = self.call("jingdong.pop.order.enGet", {"order_id": no, "optional_fields": fields})
        return body["jingdong_pop_order_enGet_responce"]["orderDetailInfo"]["orderInfo"]

    def facts(self, order: dict) -> tuple[str, Decimal, Decimal]:
        unified = {
            "WAIT_PAY": "awaiting_payment",
            "WAIT_SELLER_STOCK_OUT": "paid_pending_review",
            "WAIT_GOODS_RECEIVE_CONFIRM": "in_transit",
            "FINISHED_L": "delivered",
            "TRADE_CANCELED": "closed",
            "LOCKED": "after_sale",
        }[order["orderState"]]
        return unified, Decimal(order["orderPayment"]), Decimal(order["orderTotalPrice"])

    def clear_name(self, no: str, order: dict) -> str:
        vo = {"orderInfos": [{"orderId": no, "oaid": order["oaid"]}], "scenesType": "1001"}
        body = self.call("jingdong.jos.order.oaid.decrypt", {"getReceiverInfoListReqVO": vo})
        return body["jingdong_jos_order_oaid_decrypt_responce"]["returnType"]["data"][0]["fullname"]

    def refresh(self) -> str:
        response = self.http.get(
            f"{self.base}/oauth2/refresh_token",
            params={
                "app_key": self.creds["app_key"],
                "app_secret": self.creds["app_secret"],
                "grant_type": "refresh_token",
                "refresh_token": self.creds["refresh_token"],
            },
        )
        return response.json()["access_token"]


class Douyin(Client):
    channel = "douyin"
    max_window = timedelta(days=7)
    codes = {
        "sign": "isv.signature-invalid",
        "token": "isv.access-token-expired",
        "window": "isv.parameter-invalid",
        "rate": "60000",
    }
    first_page = 0
    use_hmac = True

    def call(self, method: str, biz: dict, token: bool = True) -> dict:
        pj = json.dumps(biz, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        ts = str(int((datetime.now(UTC) + self.skew).timestamp()))
        query = {
            "app_key": self.creds["app_key"],
            "method": method,
            "timestamp": ts,
            "v": "2",
            "sign_method": "hmac-sha256" if self.use_hmac else "md5",
        }
        query["sign"] = self.bad(
            douyin_signature(
                self.creds["app_key"], method, pj, ts, self.creds["app_secret"], self.use_hmac
            )
        )
        if token:
            query["access_token"] = self.token
        response = self.http.post(
            f"{self.base}/{method.replace('.', '/')}",
            params=query,
            content=pj.encode(),
            headers={"content-type": "application/json", "x-open-no-old-err-code": "1"},
        )
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        if body["code"] == 10000:
            return None
        return str(body["code"]) if body["code"] == 60000 else body["sub_code"]

    def page(self, start, end, page, size):
        body = self.call(
            "order.searchList",
            {
                "update_time_start": int(start.timestamp()),
                "update_time_end": int(end.timestamp()),
                "order_by": "update_time",
                "order_asc": True,
                "page": page,
                "size": size,
            },
        )
        data = body["data"]
        rows = [o["order_id"] for o in data["shop_order_list"]]
        return rows, (page + 1 if (page + 1) * size < data["total"] else None)

    def detail(self, no: str) -> dict:
        return self.call("order.orderDetail", {"shop_order_id": no})["data"]["shop_order_detail"]

    def facts(self, order: dict) -> tuple[str, Decimal, Decimal]:
        status = order["order_status"]
        after = any(s["after_sale_info"]["after_sale_status"] for s in order["sku_order_list"])
        if status in (1, 2, 4):
            unified = {1: "awaiting_payment", 2: "paid_pending_review", 4: "closed"}[status]
        elif after:
            unified = "after_sale"
        else:
            unified = {3: "in_transit", 5: "delivered"}[status]
        return unified, Decimal(order["pay_amount"]) / 100, Decimal(order["order_amount"]) / 100

    def clear_name(self, no: str, order: dict) -> str:
        body = self.call(
            "order.batchDecrypt",
            {"cipher_infos": [{"auth_id": no, "cipher_text": order["encrypt_post_receiver"]}]},
        )
        return body["data"]["decrypt_infos"][0]["decrypt_text"]

    def refresh(self) -> str:
        body = self.call(
            "token.refresh",
            {"refresh_token": self.creds["refresh_token"], "grant_type": "refresh_token"},
            token=False,
        )
        return body["data"]["access_token"]


class Pdd(Client):
    channel = "pdd"
    max_window = timedelta(minutes=30)
    codes = {"sign": "20004", "token": "10019", "window": "10000", "rate": "70031"}

    def call(self, api: str, biz: dict, token: bool = True) -> dict:
        params = {
            "type": api,
            "client_id": self.creds["client_id"],
            "timestamp": str(int((datetime.now(UTC) + self.skew).timestamp())),
            "data_type": "JSON",
            "version": "V1",
            **biz,
        }
        if token:
            params["access_token"] = self.token
        params["sign"] = self.bad(pdd_signature(params, self.creds["client_secret"]))
        response = self.http.post(f"{self.base}/api/router", json=params)
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        err = body.get("error_response")
        return str(err["error_code"]) if err else None

    def page(self, start, end, page, size):
        body = self.call(
            "pdd.order.number.list.increment.get",
            {
                "start_updated_at": int(start.timestamp()),
                "end_updated_at": int(end.timestamp()),
                "order_status": 5,
                "refund_status": 5,
                "is_lucky_flag": 0,
                "page": page,
                "page_size": size,
                "use_has_next": True,
            },
        )
        data = body["order_sn_increment_get_response"]
        rows = [o["order_sn"] for o in data["order_sn_list"]]
        return rows, (page + 1 if data["has_next"] else None)

    def detail(self, no: str) -> dict:
        return self.call("pdd.order.information.get", {"order_sn": no})["order_info_get_response"][
            "order_info"
        ]

    def facts(self, order: dict) -> tuple[str, Decimal, Decimal]:
        if order["confirm_status"] == 0:
            unified = "awaiting_payment"
        elif order["confirm_status"] == 2 or (
            order["refund_status"] == 4 and not order.get("shipping_time")
        ):
            unified = "closed"
        elif order["refund_status"] in (2, 3, 4):
            unified = "after_sale"
        else:
            unified = {1: "paid_pending_review", 2: "in_transit", 3: "delivered"}[
                order["order_status"]
            ]
        return unified, Decimal(str(order["pay_amount"])), Decimal(str(order["goods_amount"]))

    def clear_name(self, no: str, order: dict) -> str:
        body = self.call(
            "pdd.open.decrypt.batch",
            {"data_list": [{"data_tag": no, "encrypted_data": order["receiver_name"]}]},
        )
        return body["open_decrypt_batch_response"]["data_decrypt_list"][0]["decrypted_data"]

    def refresh(self) -> str:
        body = self.call(
            "pdd.pop.auth.token.refresh",
            {"refresh_token": self.creds["refresh_token"]},
            token=False,
        )
        return body["pop_auth_token_refresh_response"]["access_token"]


class Kuaishou(Client):
    channel = "kuaishou"
    max_window = timedelta(days=7)
    codes = {"sign": "24", "token": "28", "window": "12", "rate": "21"}
    cursor_paging = True
    first_page = ""
    sign_method = "MD5"

    def call(self, method: str, param: dict) -> dict:
        params = {
            "appkey": self.creds["app_key"],
            "method": method,
            "version": "1",
            "access_token": self.token,
            "signMethod": self.sign_method,
            "timestamp": str(int((datetime.now(UTC) + self.skew).timestamp() * 1000)),
            "param": json.dumps(param, ensure_ascii=False),
        }
        params["sign"] = self.bad(
            kuaishou_signature(params, self.creds["sign_secret"], self.sign_method)
        )
        path = method.replace(".", "/")
        response = self.http.get(f"{self.base}/{path}", params=params)
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        return None if body["result"] == 1 else str(body["result"])

    def page(self, start, end, cursor, size):
        body = self.call(
            "open.order.cursor.list",
            {
                "queryType": 2,
                "beginTime": int(start.timestamp() * 1000),
                "endTime": int(end.timestamp() * 1000),
                "pageSize": size,
                "sort": 2,
                "cursor": cursor,
                "orderViewStatus": 1,
            },
        )
        data = body["data"]
        rows = [str(o["orderBaseInfo"]["oid"]) for o in data["orderList"]]
        return rows, (None if data["cursor"] == "nomore" else data["cursor"])

    def detail(self, no: str) -> dict:
        return self.call("open.order.detail", {"oid": int(no)})["data"]

    def facts(self, order: dict) -> tuple[str, Decimal, Decimal]:
        base = order["orderBaseInfo"]
        status = base["status"]
        if status in (10, 30, 80):
            unified = {10: "awaiting_payment", 30: "paid_pending_review", 80: "closed"}[status]
        elif order["orderRefundList"]:
            unified = "after_sale"
        else:
            unified = {40: "in_transit", 50: "delivered"}[status]
        return unified, Decimal(base["payAmount"]) / 100, Decimal(base["totalFee"]) / 100

    def clear_name(self, no: str, order: dict) -> str:
        cipher = order["orderAddress"]["encryptedConsignee"]
        body = self.call(
            "open.order.decrypt.batch",
            {"batchDecryptList": [{"bizId": no, "encryptedData": cipher}]},
        )
        return body["data"]["decryptList"][0]["decryptedData"]

    def refresh(self) -> str:
        response = self.http.post(
            f"{self.base}/oauth2/refresh_token",
            data={
                "app_id": self.creds["app_key"],
                "app_secret": self.creds["app_secret"],
                "grant_type": "refresh_token",
                "refresh_token": self.creds["refresh_token"],
            },
        )
        return response.json()["access_token"]


class Youzan(Client):
    channel = "youzan"
    max_window = timedelta(days=31)
    codes = {"sign": "", "token": "10003", "window": "10001", "rate": "20001"}

    def call(self, api: str, body: dict) -> dict:
        token = self.token + ("x" if self.tamper else "")  # no signing: the token is the key
        response = self.http.post(
            f"{self.base}/api/{api}", params={"access_token": token}, json=body
        )
        response.raise_for_status()
        return response.json()

    def error(self, body: dict) -> str | None:
        return None if body.get("success") else str(body["code"])

    def page(self, start, end, page, size):
        body = self.call(
            "youzan.trades.sold.get/4.0.4",
            {
                "start_update": bj_text(start),
                "end_update": bj_text(end),
                "page_no": page,
                "page_size": size,
            },
        )
        data = body["data"]
        rows = [e["full_order_info"]["order_info"]["tid"] for e in data["full_order_info_list"]]
        return rows, (page + 1 if page * size < data["total_results"] else None)

    def detail(self, no: str) -> dict:
        return self.call("youzan.trade.get/4.0.0", {"tid": no})["data"]

    def facts(self, entry: dict) -> tuple[str, Decimal, Decimal]:
        info = entry["full_order_info"]
        status = info["order_info"]["status"]
        if status in ("WAIT_BUYER_PAY", "WAIT_SELLER_SEND_GOODS", "TRADE_CLOSED"):
            unified = {
                "WAIT_BUYER_PAY": "awaiting_payment",
                "WAIT_SELLER_SEND_GOODS": "paid_pending_review",
                "TRADE_CLOSED": "closed",
            }[status]
        elif info["order_info"]["refund_state"]:
            unified = "after_sale"
        else:
            unified = {"WAIT_BUYER_CONFIRM_GOODS": "in_transit", "TRADE_SUCCESS": "delivered"}[
                status
            ]
        pay = info["pay_info"]
        return unified, Decimal(pay["payment"]), Decimal(pay["total_fee"])

    def clear_name(self, no: str, entry: dict) -> str:
        cipher = entry["full_order_info"]["address_info"]["receiver_name"]
        body = self.call("youzan.cloud.secret.decrypt.batch/1.0.0", {"sources": [cipher]})
        return body["data"][cipher]

    def refresh(self) -> str:
        response = self.http.post(
            f"{self.base}/auth/token",
            json={
                "client_id": self.creds["client_id"],
                "client_secret": self.creds["client_secret"],
                "authorize_type": "refresh_token",
                "refresh_token": self.creds["refresh_token"],
            },
        )
        return response.json()["data"]["access_token"]


CLIENTS: dict[str, type[Client]] = {
    c.channel: c for c in (Taobao, Jd, Douyin, Pdd, Kuaishou, Youzan)
}


# -- fixtures and the expected view ----------------------------------------------------------------
class Swappable:
    """An ASGI app that forwards to whichever gateway the current test installed (one real
    server per platform for the module; each test gets a fresh gateway)."""

    def __init__(self) -> None:
        self.target = None

    async def __call__(self, scope, receive, send) -> None:
        await self.target.app(scope, receive, send)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[Swappable, str]]]:
    running = {}
    for channel in GATEWAYS:
        swap = Swappable()
        running[channel] = (swap, serve_app(swap, channel))
    yield {c: (swap, app.base_url) for c, (swap, app) in running.items()}
    for _, app in running.values():
        app.stop()


@pytest.fixture()
def serve(servers) -> Iterator[Callable[..., tuple[Client, object]]]:
    """serve(channel, orders, faults=None) -> (client, gateway) over real HTTP on loopback."""
    clients = []

    def start(channel: str, orders: list[Order], faults: FaultConfig | None = None, **client_kw):
        gateway = GATEWAYS[channel](orders, faults=faults)
        swap, base_url = servers[channel]
        swap.target = gateway
        client = CLIENTS[channel](base_url, gateway.credentials, **client_kw)
        clients.append(client)
        return client, gateway

    yield start
    for client in clients:
        client.http.close()


def modified_now(order: Order, now: datetime) -> datetime | None:
    """The order's last change at or before `now` (None: not created yet), whole seconds."""
    times = [
        order.created_at,
        *([order.paid_at] if order.paid_at else []),
        *(e.at for e in order.events),
    ]
    past = [t for t in times if t <= now]
    if not past or order.created_at > now:
        return None
    return datetime.fromtimestamp(int(max(past).timestamp()), UTC)


def windows(start: datetime, end: datetime, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Adjacent, non-overlapping [a, b] windows (whole seconds) covering [start, end]."""
    a = start
    while a <= end:
        b = min(a + step - timedelta(seconds=1), end)
        yield a, b
        a = b + timedelta(seconds=1)


PLATFORMS = list(CLIENTS)


def _in(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def _orders(channel: str, n: int = 40, **kw) -> list[Order]:
    now = datetime.now(UTC).replace(microsecond=0)
    return sample_orders(channel, n, end=now - timedelta(minutes=5), **kw)


# -- signing, tokens, windows ----------------------------------------------------------------------
def _raw_list_call(client: Client, now: datetime, span: timedelta = timedelta(minutes=20)) -> dict:
    """One list request for [now - span, now], returning the raw body (errors included)."""
    start, end = now - span, now
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    if isinstance(client, Taobao):
        biz = {"fields": "tid", "start_modified": bj_text(start), "end_modified": bj_text(end)}
        return client.call("taobao.trades.sold.increment.get", biz)
    if isinstance(client, Jd):
        biz = {"start_date": bj_text(start), "end_date": bj_text(end), "optional_fields": "orderId"}
        return client.call("jingdong.pop.order.enSearch", biz)
    if isinstance(client, Douyin):
        biz = {
            "update_time_start": int(start.timestamp()),
            "update_time_end": int(end.timestamp()),
            "page": 0,
            "size": 10,
        }
        return client.call("order.searchList", biz)
    if isinstance(client, Pdd):
        biz = {"start_updated_at": int(start.timestamp()), "end_updated_at": int(end.timestamp())}
        return client.call("pdd.order.number.list.increment.get", biz)
    if isinstance(client, Kuaishou):
        biz = {"queryType": 2, "beginTime": s_ms, "endTime": e_ms, "pageSize": 10, "cursor": ""}
        return client.call("open.order.cursor.list", biz)
    biz = {"start_update": bj_text(start), "end_update": bj_text(end)}
    return client.call("youzan.trades.sold.get/4.0.4", biz)


@pytest.mark.parametrize("channel", PLATFORMS)
def test_correct_signature_is_served_and_a_wrong_one_gets_the_platform_error(
    serve, channel
) -> None:
    client, _ = serve(channel, _orders(channel, 5))
    now = datetime.now(UTC)
    assert client.error(_raw_list_call(client, now)) is None
    client.tamper = True
    expected = client.codes["sign"] or client.codes["token"]  # Youzan: the token is the credential
    assert client.error(_raw_list_call(client, now)) == expected


@pytest.mark.parametrize("channel", PLATFORMS)
def test_wrong_token_is_refused_and_expiry_is_healed_by_the_refresh_flow(serve, channel) -> None:
    client, gateway = serve(channel, _orders(channel, 5), FaultConfig(token_expiry_after=2))
    now = datetime.now(UTC)
    real = client.token
    client.token = "not-a-token"
    assert client.error(_raw_list_call(client, now)) is not None
    client.token = real
    assert client.error(_raw_list_call(client, now)) is None
    assert client.error(_raw_list_call(client, now)) is None
    assert (
        client.error(_raw_list_call(client, now)) == client.codes["token"]
    )  # expired after 2 calls
    client.token = client.refresh()
    assert client.token != real
    assert client.error(_raw_list_call(client, now)) is None
    assert gateway.tokens.refreshes == 1


@pytest.mark.parametrize("channel", ["taobao", "jd", "douyin", "pdd", "kuaishou"])
def test_a_timestamp_far_from_the_server_clock_is_refused(serve, channel) -> None:
    client, _ = serve(channel, _orders(channel, 3))
    client.skew = timedelta(minutes=30)
    assert client.error(_raw_list_call(client, datetime.now(UTC))) is not None
    client.skew = timedelta(0)
    assert client.error(_raw_list_call(client, datetime.now(UTC))) is None


@pytest.mark.parametrize("channel", PLATFORMS)
def test_a_window_longer_than_the_platform_allows_is_refused(serve, channel) -> None:
    client, _ = serve(channel, _orders(channel, 3))
    end = datetime.now(UTC)
    limit = {
        "taobao": timedelta(days=1),
        "jd": timedelta(days=32),
        "douyin": timedelta(days=7),
        "pdd": timedelta(minutes=30),
        "kuaishou": timedelta(days=7),
        "youzan": timedelta(days=31),
    }[channel]
    too_long = _raw_list_call(client, end, limit + timedelta(seconds=1))
    assert client.error(too_long) == client.codes["window"]
    rows, _ = client.page(end - client.max_window, end, client.first_page, 10)  # within: served
    assert isinstance(rows, list)


# -- paging and content ----------------------------------------------------------------------------
@pytest.mark.parametrize("channel", PLATFORMS)
def test_paging_windows_covers_every_visible_order_exactly_once(serve, channel) -> None:
    orders = _orders(channel, 45, span=timedelta(hours=30))
    future = [
        o.model_copy(update={"platform_order_no": order_number(channel, 5000 + k, o.created_at)})
        for k, o in enumerate(sample_orders(channel, 2, end=_in(hours=3), span=timedelta(hours=1)))
    ]
    client, _ = serve(channel, orders + future)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=2)
    step = min(client.max_window, timedelta(hours=12))
    seen: list[str] = []
    for a, b in windows(start, now, step):
        seen += client.forward(a, b, 7)
    expected = [o.platform_order_no for o in orders if modified_now(o, now) is not None]
    assert len(seen) == len(set(seen)), "an order was served twice"
    assert sorted(seen) == sorted(expected)
    assert not {o.platform_order_no for o in future} & set(seen), "an order from the future leaked"


@pytest.mark.parametrize("channel", PLATFORMS)
def test_detail_shows_the_order_as_of_now_with_its_amounts_and_receiver(serve, channel) -> None:
    orders = _orders(channel, 20, span=timedelta(hours=20))
    client, _ = serve(channel, orders)
    now = datetime.now(UTC)
    for order in orders:
        detail = client.detail(order.platform_order_no)
        unified, paid, goods = client.facts(detail)
        assert unified == order.status_at(now), order.platform_order_no
        assert paid == order.paid_amount
        assert goods == order.goods_value
    visible = [
        o for o in orders if client.channel != "pdd" or o.status_at(now) == "paid_pending_review"
    ]
    for order in visible[:3]:
        detail = client.detail(order.platform_order_no)
        assert client.clear_name(order.platform_order_no, detail) == order.receiver.name


def test_an_order_from_the_future_is_invisible_to_the_detail_call(serve) -> None:
    future = sample_orders("pdd", 1, end=_in(hours=2), span=timedelta(hours=1))
    client, _ = serve("pdd", future)
    body = client.call("pdd.order.information.get", {"order_sn": future[0].platform_order_no})
    assert client.error(body) == "10000"


# -- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("channel", PLATFORMS)
def test_rate_limit_fault_gives_the_platform_rate_limit_error(serve, channel) -> None:
    client, gateway = serve(channel, _orders(channel, 3), FaultConfig(rate_limit=0.7, seed=3))
    now = datetime.now(UTC)
    codes = [client.error(_raw_list_call(client, now)) for _ in range(12)]
    assert client.codes["rate"] in codes
    assert None in codes  # a retrying client gets through
    assert set(codes) <= {None, client.codes["rate"]}
    gateway.set_faults(FaultConfig())
    assert client.error(_raw_list_call(client, now)) is None


@pytest.mark.parametrize("channel", PLATFORMS)
def test_server_error_fault_gives_http_5xx(serve, channel) -> None:
    client, _ = serve(channel, _orders(channel, 3), FaultConfig(server_error=0.7, seed=5))
    now = datetime.now(UTC)
    statuses = []
    for _ in range(10):
        try:
            _raw_list_call(client, now)
            statuses.append(200)
        except httpx.HTTPStatusError as err:
            statuses.append(err.response.status_code)
    assert {s for s in statuses if s >= 500} and set(statuses) <= {200, 500, 502, 503, 504}
    assert 200 in statuses


@pytest.mark.parametrize("channel", PLATFORMS)
def test_slow_fault_trips_a_client_timeout_and_a_retry_succeeds(serve, channel) -> None:
    client, _ = serve(
        channel, _orders(channel, 3), FaultConfig(slow=0.6, slow_seconds=1.5, seed=2), timeout=0.5
    )
    now = datetime.now(UTC)
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(client.error(_raw_list_call(client, now)))
        except httpx.TimeoutException:
            outcomes.append("timeout")
    assert "timeout" in outcomes
    assert None in outcomes


def _burst(channel: str, n: int = 24) -> list[Order]:
    """`n` orders created within 20 minutes ending 30 min ago, no later changes."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    orders = sample_orders(channel, n, end=end, span=timedelta(minutes=20))
    return [o.model_copy(update={"events": [], "paid_at": None}) for o in orders]


@pytest.mark.parametrize("channel", PLATFORMS)
def test_duplicates_fault_repeats_the_last_row_of_the_previous_page(serve, channel) -> None:
    orders = _burst(channel)
    client, _ = serve(channel, orders, FaultConfig(duplicates=True))
    end = datetime.now(UTC) - timedelta(minutes=29)
    start = end - timedelta(minutes=29)
    first, nxt = client.page(start, end, client.first_page, 5)
    second, _ = client.page(start, end, nxt, 5)
    assert second[0] == first[-1]
    rows = client.forward(start, end, 5)
    assert len(rows) > len(set(rows)) and set(rows) == {o.platform_order_no for o in orders}


@pytest.mark.parametrize("channel", PLATFORMS)
def test_page_shift_moves_an_order_while_paging_and_a_correct_client_loses_nothing(
    serve, channel
) -> None:
    orders = _burst(channel)
    client, _ = serve(channel, orders, FaultConfig(page_shift=True))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=29)
    start = end - timedelta(minutes=29)
    if client.cursor_paging:
        rows = client.forward(start, end, 5)  # a cursor is immune to shifts
    else:
        first, _ = client.page(start, end, client.first_page, 5)  # learn the total
        last = client.first_page + (len(orders) - 1) // 5
        rows = list(first)
        for page in range(last, client.first_page, -1):  # backwards: the platforms' advice
            got, _ = client.page(start, end, page, 5)
            rows += got
    moved = client.forward(end + timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=2), 50)
    assert len(moved) == 1, "page_shift moved exactly one order out of the window"
    assert set(rows) | set(moved) == {o.platform_order_no for o in orders}


def test_page_shift_makes_forward_page_numbers_skip_a_row(serve) -> None:
    orders = _burst("taobao")
    client, _ = serve("taobao", orders, FaultConfig(page_shift=True))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=29)
    start = end - timedelta(minutes=29)
    rows = client.forward(start, end, 5)
    moved = client.forward(end + timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=2), 50)
    lost = {o.platform_order_no for o in orders} - set(rows) - set(moved)
    assert len(lost) == 1, "a forward pager misses the row that slid onto a page it already read"


# -- platform specifics ----------------------------------------------------------------------------
@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_taobao_accepts_each_documented_sign_method(serve, sign_method) -> None:
    client, _ = serve("taobao", _orders("taobao", 3))
    now = datetime.now(UTC)
    body = client.call(
        "taobao.trades.sold.increment.get",
        {
            "fields": "tid",
            "start_modified": bj_text(now - timedelta(hours=1)),
            "end_modified": bj_text(now),
        },
        sign_method=sign_method,
    )
    assert client.error(body) is None


def test_taobao_list_is_partial_and_empty_lists_omit_trades(serve) -> None:
    orders = _orders("taobao", 10, span=timedelta(hours=10))
    client, _ = serve("taobao", orders)
    now = datetime.now(UTC)
    body = client.call(
        "taobao.trades.sold.increment.get",
        {
            "fields": "tid,tid_str,status,receiver_name,oaid,orders",
            "start_modified": bj_text(now - timedelta(hours=23)),
            "end_modified": bj_text(now),
        },
    )
    trades = body["trades_sold_increment_get_response"]["trades"]["trade"]
    assert trades and all("receiver_name" not in t and "oaid" not in t for t in trades)
    assert all("tid_str" in t and "status" in t for t in trades)
    empty = client.call(
        "taobao.trades.sold.increment.get",
        {
            "fields": "tid",
            "start_modified": "2020-01-01 00:00:00",
            "end_modified": "2020-01-01 12:00:00",
        },
    )
    assert "trades" not in empty["trades_sold_increment_get_response"]
    assert empty["trades_sold_increment_get_response"]["total_results"] == 0


def test_douyin_md5_signing_is_served_too(serve) -> None:
    client, _ = serve("douyin", _orders("douyin", 3))
    client.use_hmac = False
    assert client.error(_raw_list_call(client, datetime.now(UTC))) is None


def test_kuaishou_hmac_sha256_signing_is_served_too(serve) -> None:
    client, _ = serve("kuaishou", _orders("kuaishou", 3))
    client.sign_method = "HMAC_SHA256"
    assert client.error(_raw_list_call(client, datetime.now(UTC))) is None


def test_pdd_ciphertext_only_while_awaiting_shipment(serve) -> None:
    orders = _orders("pdd", 20, span=timedelta(hours=20))
    client, _ = serve("pdd", orders)
    now = datetime.now(UTC)
    for order in orders:
        detail = client.detail(order.platform_order_no)
        if order.status_at(now) == "paid_pending_review":
            assert detail["receiver_name"] and detail["receiver_name"] != order.receiver.name
        else:
            assert detail["receiver_name"] == ""
        assert detail["receiver_phone_mask"].endswith(order.receiver.phone[-4:])


def test_jd_rejects_a_page_size_over_100_in_its_business_shape(serve) -> None:
    client, _ = serve("jd", _orders("jd", 3))
    now = datetime.now(UTC)
    body = client.call(
        "jingdong.pop.order.enSearch",
        {
            "start_date": bj_text(now - timedelta(days=1)),
            "end_date": bj_text(now),
            "optional_fields": "orderId",
            "page": "1",
            "page_size": "101",
        },
    )
    assert client.error(body) == "10100010"


@pytest.fixture(scope="module")
def world():
    from sandbox.world import generate_world

    return generate_world(11, 3000, 3)


@pytest.mark.parametrize("channel", PLATFORMS)
def test_every_world_order_maps_back_to_its_truth_through_the_documented_statuses(
    world, channel
) -> None:
    """The platform status rules in tests/fixtures/payloads/README.md (as the clients above
    implement them) give each generated order's true final status and amounts."""
    orders = [o for o in world.orders if o.channel == channel]
    late = {no: u for (c, no), u in world.late_updates.items() if c == channel}
    gateway = GATEWAYS[channel](orders, late=late)
    client = CLIENTS[channel]("http://unused", gateway.credentials)
    wrong = []
    for order in orders:
        truth = order.truth()
        unified, paid, goods = client.facts(gateway.sample(order.platform_order_no))
        if (unified, str(paid.quantize(Decimal("0.01"))), str(goods.quantize(Decimal("0.01")))) != (
            truth["status"],
            truth["paid_amount"],
            truth["goods_value"],
        ):
            wrong.append((order.platform_order_no, unified, truth))
    assert orders and not wrong, wrong[:3]
