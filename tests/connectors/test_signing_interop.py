"""Signing edge cases where the platforms' own SDKs and a naive implementation disagree, decided
from channels.md and the SDKs it cites, checked on both sides (the connector and the sandbox are
independent implementations) against the expected text written out by hand:

- TOP skips blank values (empty or Java-whitespace-only: U+3000 yes, U+00A0 no) like the
  official Java SDK's `StringUtils.areNotEmpty`.
- JD skips empty values (the SDKs sign non-empty parameters); a JD push with an empty field
  verifies.
- Douyin's param_json and PDD's signed JSON write numbers as the Go / Node SDKs do (2.0 -> `2`;
  the literals below were checked with Node's JSON.stringify); PDD drops a JSON null and signs
  the Node SDK's string "null" as a string.
- Youzan: the Event-Sign header alone, or the legacy body sign alone, verifies a push.

Vectors carry blank, empty, null, nested, float and Chinese values."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from connectors import douyin, jd, pdd, taobao, youzan
from connectors.push_verify import Rejected
from connectors.sign_json import js_number, sdk_json
from sandbox.gateways.common import form_body
from sandbox.gateways.douyin import canonical_param_json, douyin_sign
from sandbox.gateways.jd import jd_sign
from sandbox.gateways.pdd import pdd_sign
from sandbox.gateways.samples import sample_orders
from sandbox.gateways.sdk_json import number_text
from sandbox.gateways.taobao import top_sign
from sandbox.push import build_message, latest_state


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest().upper()


# -- numbers the SDKs' way -------------------------------------------------------------------------

NUMBERS = {  # value -> JSON.stringify / Go encoding/json
    2.0: "2",
    100.0: "100",
    0.5: "0.5",
    0.1: "0.1",
    -2.5: "-2.5",
    1e-6: "0.000001",
    1e-7: "1e-7",
    1.5e-7: "1.5e-7",
    1e21: "1e+21",
    1e20: "100000000000000000000",
    1.2345678901234568e20: "123456789012345680000",
    123456789.125: "123456789.125",
    5e-324: "5e-324",
}


@pytest.mark.parametrize("value", list(NUMBERS))
def test_floats_are_written_as_the_sdks_write_them_on_both_sides(value: float) -> None:
    assert js_number(value) == number_text(value) == NUMBERS[value]


def test_nan_has_no_json_form_on_either_side() -> None:
    with pytest.raises(ValueError):
        js_number(float("nan"))
    with pytest.raises(ValueError):
        number_text(float("inf"))


# -- Taobao TOP ------------------------------------------------------------------------------------

TOP_PARAMS = {
    "app_key": "12345678",
    "buyer_message": "   ",  # whitespace only: skipped
    "fields": "tid,status",
    "format": "json",
    "method": "taobao.trade.fullinfo.get",
    "nbsp_note": "\u00a0",  # no-break space is not Java whitespace: signed
    "receiver_town": "\u3000",  # ideographic space is: skipped
    "seller_memo": "",  # empty: skipped
    "session": "test",
    "sign_method": "md5",
    "tabs": "\t\r\n",  # skipped
    "timestamp": "2016-01-01 12:00:00",
    "title": " 西湖龙井 250g ",  # not blank: signed with its spaces
    "v": "2.0",
}
TOP_TEXT = (
    "app_key12345678fieldstid,statusformatjsonmethodtaobao.trade.fullinfo.get"
    "nbsp_note\u00a0sessiontestsign_methodmd5timestamp2016-01-01 12:00:00"
    "title 西湖龙井 250g v2.0"
)


def test_top_skips_blank_values_like_the_java_sdk() -> None:
    expected = md5_upper(f"helloworld{TOP_TEXT}helloworld")
    assert taobao.sign(TOP_PARAMS, "helloworld") == expected
    assert top_sign(TOP_PARAMS, "helloworld", "md5") == expected
    mac = hmac.new(b"helloworld", TOP_TEXT.encode(), hashlib.sha256).hexdigest().upper()
    assert taobao.sign(TOP_PARAMS, "helloworld", "hmac-sha256") == mac
    assert top_sign(TOP_PARAMS, "helloworld", "hmac-sha256") == mac


def test_top_documented_vector_still_holds_on_both_sides() -> None:
    params = {
        "app_key": "12345678",
        "fields": "num_iid,title,nick,price,num",
        "format": "json",
        "method": "taobao.item.seller.get",
        "num_iid": "11223344",
        "session": "test",
        "sign_method": "md5",
        "timestamp": "2016-01-01 12:00:00",
        "v": "2.0",
    }
    assert taobao.sign(params, "helloworld") == "66987CB115214E59E6EC978214934FB8"
    assert top_sign(params, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


# -- JD --------------------------------------------------------------------------------------------

JD_PARAMS = {
    "360buy_param_json": '{"order_state":"WAIT_SELLER_STOCK_OUT","remark":"京东 自营","price":2}',
    "access_token": "yourtoken",
    "app_key": "yourappkey",
    "format": "",  # empty: skipped
    "method": "jingdong.pop.order.enSearch",
    "note": " ",  # whitespace: signed as sent
    "timestamp": "2021-05-07 09:20:39.683+0800",
    "v": "2.0",
}
JD_TEXT = (
    '360buy_param_json{"order_state":"WAIT_SELLER_STOCK_OUT","remark":"京东 自营","price":2}'
    "access_tokenyourtokenapp_keyyourappkeymethodjingdong.pop.order.enSearch"
    "note timestamp2021-05-07 09:20:39.683+0800v2.0"
)


def test_jd_skips_empty_values_on_both_sides() -> None:
    expected = md5_upper(f"yourappSecret{JD_TEXT}yourappSecret")
    assert jd.sign(JD_PARAMS, "yourappSecret") == expected
    assert jd_sign(JD_PARAMS, "yourappSecret") == expected


def test_jd_documented_vector_still_holds_on_both_sides() -> None:
    params = {
        "360buy_param_json": '{"end_date":null,"optional_fields":null,'
        '"order_state":"WAIT_SELLER_STOCK_OUT","page":"1","page_size":"200","start_date":null}',
        "access_token": "yourtoken",
        "app_key": "yourappkey",
        "method": "jingdong.pop.order.search",
        "timestamp": "2021-05-07 09:20:39.683+0800",
        "v": "2.0",
    }
    assert jd.sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"
    assert jd_sign(params, "yourappSecret") == "D70825340F4084360B9362B60DFD7930"


def test_a_jd_push_with_an_empty_field_verifies() -> None:
    creds = {"app_key": "ak", "app_secret": "jd-secret", "access_token": "t"}
    now = datetime.now(UTC)
    order = sample_orders("jd", 1, end=now - timedelta(minutes=1))[0]
    message = build_message("jd", latest_state(order, now), creds, now)
    fields = dict(parse_qsl(message.content.decode(), keep_blank_values=True))
    fields = {**fields, "remark": "", "memo": "备注"}  # an empty and a Chinese field
    fields["sign"] = jd_sign({k: v for k, v in fields.items() if k != "sign"}, "jd-secret")
    verified = jd.verify_jd({}, form_body(fields), creds)
    assert verified.messages[0].order_nos == [order.platform_order_no]
    with pytest.raises(Rejected) as refused:
        jd.verify_jd({}, form_body({**fields, "remark": "x"}), creds)
    assert refused.value.status == 401


# -- Douyin ----------------------------------------------------------------------------------------

DOUYIN_PARAMS = {
    "size": 100,
    "page": 0,
    "price": 2.0,
    "ratio": 0.5,
    "tiny": 1e-7,
    "big": 1e21,
    "nested": {"z": [1.0, 2.5, None], "a": "抖店 <b>&", "sep": "\u2028"},
    "empty": "",
    "blank": " ",
    "none": None,
    "flag": True,
}
# json.dumps(sort_keys=True) would write 2.0, 1e-07 and [1.0, ...]
DOUYIN_PJ = (
    '{"big":1e+21,"blank":" ","empty":"","flag":true,'
    '"nested":{"a":"抖店 <b>&","sep":"\\u2028","z":[1,2.5,null]},'
    '"none":null,"page":0,"price":2,"ratio":0.5,"size":100,"tiny":1e-7}'
)


def test_douyin_param_json_is_the_go_sdks_on_both_sides() -> None:
    assert douyin.param_json(DOUYIN_PARAMS) == DOUYIN_PJ
    assert canonical_param_json(DOUYIN_PARAMS) == DOUYIN_PJ
    # the sandbox re-reads the body it received: the text the connector sent and signed
    assert canonical_param_json(json.loads(DOUYIN_PJ)) == DOUYIN_PJ


@pytest.mark.parametrize("method", ["md5", "hmac-sha256"])
def test_douyin_sign_agrees_on_both_sides(method: str) -> None:
    text = f"SECRETapp_keyAKmethodorder.searchListparam_json{DOUYIN_PJ}timestamp1700000000v2SECRET"
    expected = (
        hashlib.md5(text.encode()).hexdigest()
        if method == "md5"
        else hmac.new(b"SECRET", text.encode(), hashlib.sha256).hexdigest()
    )
    ours = douyin.sign("AK", "order.searchList", DOUYIN_PJ, "1700000000", "SECRET", method)
    theirs = douyin_sign("AK", "order.searchList", DOUYIN_PJ, "1700000000", "SECRET", method)
    assert ours == theirs == expected


# -- PDD -------------------------------------------------------------------------------------------

PDD_PARAMS = {
    "type": "pdd.order.information.get",
    "client_id": "1",
    "timestamp": "1480411125",
    "order_sn": "180227-394702832640993",
    "price": 2.0,
    "item_list": [{"goods_price": 2.0, "goods_name": "五常大米 5kg", "memo": None, "qty": 1}],
    "use_has_next": False,
    "note": "",  # empty string: signed as its bare key (only nulls are dropped)
    "blank": " ",
    "nullable": None,  # dropped
    "node_null": "null",  # the Node SDK's null: a string, signed as such
}
PDD_TEXT = (
    "blank client_id1"
    'item_list[{"goods_price":2,"goods_name":"五常大米 5kg","memo":null,"qty":1}]'
    "node_nullnullnoteorder_sn180227-394702832640993price2"
    "timestamp1480411125typepdd.order.information.getuse_has_nextfalse"
)


def test_pdd_signs_numbers_nested_json_and_nulls_like_its_sdks_on_both_sides() -> None:
    expected = md5_upper(f"testSecret{PDD_TEXT}testSecret")
    assert pdd.sign(PDD_PARAMS, "testSecret") == expected
    assert pdd_sign(PDD_PARAMS, "testSecret") == expected
    # what the sandbox receives: the connector's JSON body, read back (2.0 stays a float)
    received = json.loads(json.dumps({**PDD_PARAMS, "sign": expected}))
    assert pdd_sign(received, "testSecret") == received["sign"]


def test_pdd_documented_vector_still_holds_on_both_sides() -> None:
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
    assert pdd.sign(params, "testSecret") == "E4DE3ED21002510DED352819E7AE6775"
    assert pdd_sign(params, "testSecret") == "E4DE3ED21002510DED352819E7AE6775"


def test_sdk_json_keeps_key_order_unless_sorted_on_both_sides() -> None:
    value = {"b": 1, "a": {"d": 2.0, "c": "中"}}
    assert sdk_json(value) == '{"b":1,"a":{"d":2,"c":"中"}}'
    assert sdk_json(value, sort_keys=True) == '{"a":{"c":"中","d":2},"b":1}'
    from sandbox.gateways.sdk_json import sdk_json as sandbox_json

    assert sandbox_json(value) == sdk_json(value)
    assert sandbox_json(value, sort=True) == sdk_json(value, sort_keys=True)


# -- Youzan ----------------------------------------------------------------------------------------


def _youzan_message() -> tuple[bytes, dict[str, str], dict[str, str], str]:
    creds = {"client_id": "yz-client", "client_secret": "yz-secret", "access_token": "t"}
    now = datetime.now(UTC)
    order = sample_orders("youzan", 1, end=now - timedelta(minutes=1))[0]
    message = build_message("youzan", latest_state(order, now), creds, now)
    headers = {k.lower(): v for k, v in message.headers.items()}
    return message.content, headers, creds, order.platform_order_no


def test_youzan_event_sign_alone_verifies() -> None:
    body, headers, creds, no = _youzan_message()
    message = json.loads(body)
    del message["sign"]  # a newer push without the legacy body sign
    stripped = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    header = hashlib.md5(
        (creds["client_id"] + stripped.decode() + creds["client_secret"]).encode()
    ).hexdigest()
    verified = youzan.verify_youzan({"event-sign": header}, stripped, creds)
    assert verified.messages[0].order_nos == [no]
    assert verified.messages[0].message_id == message["id"]
    with pytest.raises(Rejected):  # a header that does not match is not rescued by anything
        youzan.verify_youzan({"event-sign": "0" * 32}, body, creds)


def test_youzan_legacy_body_sign_alone_verifies_with_an_id_from_the_signed_msg() -> None:
    body, headers, creds, no = _youzan_message()
    verified = youzan.verify_youzan({}, body, creds)  # no Event-Sign header
    (message,) = verified.messages
    assert message.order_nos == [no] and message.message_id.startswith("sha256:")
    # the legacy sign covers msg only: a fresh id does not make a replay a new message
    renamed = json.loads(body)
    renamed["id"] = "another-id"
    again = youzan.verify_youzan({}, json.dumps(renamed).encode(), creds)
    assert again.messages[0].message_id == message.message_id
    tampered = json.loads(body)
    tampered["msg"] = tampered["msg"].replace("tid", "tiD")
    with pytest.raises(Rejected) as refused:
        youzan.verify_youzan({}, json.dumps(tampered).encode(), creds)
    assert refused.value.status == 401
    both = youzan.verify_youzan(headers, body, creds)  # what the sandbox sends: both
    assert both.messages[0].order_nos == [no]
