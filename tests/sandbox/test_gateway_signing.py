"""The sandbox gateways, over real HTTP, accept requests signed the way the platforms' own SDKs
sign them, edge values included, and refuse the naive signature of the same request:

- TOP: a blank parameter (spaces, U+3000) sent but not signed (the Java SDK's rule) is served;
  signing it as well is Invalid Signature (25).
- JD: an empty parameter sent but not signed is served.
- Douyin: a body whose floats Python writes as `2.0`, signed over the Go SDK's `2`, is served.
- PDD: a JSON body with floats, nested objects, Chinese and a null, signed the Node SDK's way
  (`2`, the null dropped), is served; so is the Node SDK's string "null".

The connectors' clients (`connectors.<platform>`) make the signed calls; the requests are also
built by hand where a real SDK sends something our client does not (blank parameters)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors import douyin, jd, pdd, taobao
from connectors.http import make_http_client
from connectors.marketplace import BEIJING, build_client
from sandbox.gateways import GATEWAYS
from sandbox.gateways.samples import sample_orders
from sandbox.server import serve_app

CHANNELS = ("taobao", "jd", "douyin", "pdd")


@pytest.fixture(scope="module")
def gateways() -> Iterator[dict[str, tuple[object, str, str]]]:
    """channel -> (gateway, base url, an order number it serves)."""
    running = {}
    for channel in CHANNELS:
        orders = sample_orders(channel, 3, end=datetime.now(UTC) - timedelta(minutes=5))
        gateway = GATEWAYS[channel](orders)
        running[channel] = (gateway, serve_app(gateway.app, channel), orders[0].platform_order_no)
    yield {c: (g, app.base_url, no) for c, (g, app, no) in running.items()}
    for _, app, _ in running.values():
        app.stop()


def _bj_now() -> str:
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def test_top_serves_a_blank_parameter_the_java_sdk_does_not_sign(gateways) -> None:  # noqa: ANN001
    gateway, base, no = gateways["taobao"]
    creds = gateway.credentials
    form = {
        "method": "taobao.trade.fullinfo.get",
        "app_key": creds["app_key"],
        "session": creds["session"],
        "timestamp": _bj_now(),
        "format": "json",
        "v": "2.0",
        "sign_method": "md5",
        "tid": no,
        "fields": "tid,status",
        "buyer_message": "   ",
        "seller_memo": "\u3000",
    }
    form["sign"] = taobao.sign(form, creds["app_secret"])
    answer = httpx.post(f"{base}/router/rest", data=form).json()
    assert "trade_fullinfo_get_response" in answer, answer
    # the naive signature (blank values signed) is not the platform's
    naive = "".join(f"{k}{form[k]}" for k in sorted(form) if k != "sign")
    secret = creds["app_secret"]
    form["sign"] = hashlib.md5(f"{secret}{naive}{secret}".encode()).hexdigest().upper()
    answer = httpx.post(f"{base}/router/rest", data=form).json()
    assert answer["error_response"]["code"] == 25


def test_jd_serves_an_empty_parameter_left_out_of_the_signature(gateways) -> None:  # noqa: ANN001
    gateway, base, no = gateways["jd"]
    creds = gateway.credentials
    form = {
        "method": "jingdong.pop.order.enGet",
        "app_key": creds["app_key"],
        "access_token": creds["access_token"],
        "timestamp": _bj_now(),
        "v": "2.0",
        "format": "",
        "360buy_param_json": jd.param_json({"order_id": no, "optional_fields": "orderId"}),
    }
    form["sign"] = jd.sign(form, creds["app_secret"])
    answer = httpx.post(f"{base}/routerjson", data=form).json()
    assert "error_response" not in answer, answer


def test_douyin_serves_a_python_float_body_signed_the_go_way(gateways) -> None:  # noqa: ANN001
    gateway, base, no = gateways["douyin"]
    creds = gateway.credentials
    params = {"shop_order_id": no, "weight": 2.0, "note": {"ratio": 0.5, "text": "抖店 <b>"}}
    body = json.dumps(params)  # "2.0", Chinese escaped: what a Python client puts on the wire
    stamp = str(int(datetime.now(UTC).timestamp()))
    pj = douyin.param_json(params)
    assert pj.endswith('"weight":2}')
    sign = douyin.sign(creds["app_key"], "order.orderDetail", pj, stamp, creds["app_secret"])
    query = {
        "app_key": creds["app_key"],
        "method": "order.orderDetail",
        "access_token": creds["access_token"],
        "timestamp": stamp,
        "v": "2",
        "sign_method": "hmac-sha256",
        "sign": sign,
    }
    answer = httpx.post(f"{base}/order/orderDetail", params=query, content=body).json()
    assert answer["code"] == 10000, answer


def test_pdd_serves_floats_nested_json_and_nulls_signed_like_its_sdks(gateways) -> None:  # noqa: ANN001
    gateway, base, no = gateways["pdd"]
    creds = {**gateway.credentials, "base_url": base}
    with make_http_client(timeout=5) as http:
        client = build_client("pdd", creds, http)
        answer = client.invoke(
            "pdd.order.information.get",
            {"order_sn": no, "weight": 2.0, "extra": {"a": 1.0, "名": "中"}, "gone": None},
        )
    assert answer["order_info"]["order_sn"] == no
    # a Node SDK request: every object pre-stringified, a null sent as the string "null"
    body = {
        "type": "pdd.order.information.get",
        "client_id": creds["client_id"],
        "access_token": creds["access_token"],
        "timestamp": str(int(datetime.now(UTC).timestamp())),
        "data_type": "JSON",
        "order_sn": no,
        "extra": json.dumps({"a": 1}, separators=(",", ":")),
        "gone": "null",
    }
    body["sign"] = pdd.sign(body, creds["client_secret"])
    answer = httpx.post(f"{base}/api/router", json=body).json()
    assert "error_response" not in answer, answer
