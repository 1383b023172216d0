"""The regional platforms' daily CSV exports (read back with the csv module only)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from types import SimpleNamespace

from sandbox.exports import (
    days_by_channel,
    default_encoding,
    file_name,
    reexport_day,
    render_day,
    write_exports,
)
from sandbox.model import Order


def _order(no: str, channel: str = "regional_a", **over) -> Order:
    data = {
        "channel": channel,
        "platform_order_no": no,
        "shop_id": "S1",
        "created_at": "2026-11-20T10:00:00+08:00",
        "buyer_id": "B1",
        "receiver": {
            "name": "张三",
            "phone": "13800001111",
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "address": "文三路1号, 2单元",
        },
        "items": [
            {"sku": "SKU1", "qty": 1, "price": "1299"},
            {"sku": "SKU2", "qty": 2, "price": "59.9"},
        ],
        "freight": "10",
        "coupons": [
            {"code": "C1", "issuer": "shop", "amount": "5"},
            {"code": "C2", "issuer": "platform", "amount": "3"},
        ],
        "events": [
            {"at": "2026-11-20T10:01:00+08:00", "type": "pay"},
            {"at": "2026-11-21T09:00:00+08:00", "type": "ship"},
        ],
        "buyer_note": '请尽快发货,谢谢\n"急"',
    }
    data.update(over)
    return Order.model_validate(data)


def _rows(data: bytes, encoding: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(encoding), newline="")))


def test_regional_a_rows_per_item_with_its_formats() -> None:
    data = render_day([_order("A1")], "regional_a", date(2026, 11, 20), encoding="utf-8")
    rows = _rows(data, "utf-8")
    assert [r["商品编码"] for r in rows] == ["SKU1", "SKU2"]
    first = rows[0]
    assert first["订单编号"] == "A1"
    assert first["下单时间"] == "2026/11/20 10:00:00"
    assert first["单价"] == "1,299.00" and rows[1]["单价"] == "59.90"
    # order-level columns repeated on every item row
    assert first["实付金额"] == rows[1]["实付金额"] == "1,420.80"  # 1418.80 goods - 8 + 10
    assert (first["店铺优惠"], first["平台优惠"], first["运费"]) == ("5.00", "3.00", "10.00")
    assert first["买家留言"] == '请尽快发货,谢谢\n"急"'  # quoted: comma, quote and newline
    assert first["详细地址"] == "文三路1号, 2单元"
    assert first["订单状态"] == "等待卖家发货"  # state at the end of the 20th
    assert b'"1,299.00"' in data


def test_regional_b_gbk_minutes_and_yuan_sign() -> None:
    day = date(2026, 11, 21)
    data = render_day([_order("B1", "regional_b")], "regional_b", day)
    assert default_encoding("regional_b", day) == "gbk"
    rows = _rows(data, "gbk")
    assert rows[0]["订单号"] == "B1"
    assert rows[0]["创建时间"] == "2026-11-20 10:00"
    assert rows[0]["商品单价"] == "￥1299" and rows[1]["商品单价"] == "￥59.9"
    assert rows[0]["订单状态"] == "已发货"
    assert rows[0]["最后修改时间"] == "2026-11-21 09:00"


def test_encodings_alternate_by_day_and_widen_for_rare_names() -> None:
    even = date.fromordinal(date(2026, 11, 20).toordinal() // 2 * 2)
    odd = date.fromordinal(even.toordinal() + 1)
    assert default_encoding("regional_a", even) == "utf-8"
    assert default_encoding("regional_a", odd) == "utf-8-sig"
    assert (
        render_day([_order("A1")], "regional_a", date(2026, 11, 20), encoding="utf-8-sig")[:3]
        == b"\xef\xbb\xbf"
    )
    rare = _order(
        "B2", "regional_b", receiver={**_order("x").receiver.model_dump(), "name": "𠮷野"}
    )
    data = render_day([rare], "regional_b", date(2026, 11, 20))
    assert _rows(data, "gb18030")[0]["收件人"] == "𠮷野"


def test_an_order_is_in_the_file_of_every_day_it_changed() -> None:
    order = _order("A1")
    days = days_by_channel([order, _order("B1", "regional_b")], "regional_a")
    assert list(days) == [date(2026, 11, 20), date(2026, 11, 21)]
    assert days[date(2026, 11, 21)] == [order]
    late = {("regional_a", "A1"): SimpleNamespace(
        event_type="ship",
        happened_at=datetime.fromisoformat("2026-11-21T09:00:00+08:00"),
        visible_at=datetime.fromisoformat("2026-11-22T01:00:00+08:00"),
    )}  # fmt: skip
    assert list(days_by_channel([order], "regional_a", late=late)) == [
        date(2026, 11, 20),
        date(2026, 11, 22),
    ]
    hidden = render_day([order], "regional_a", date(2026, 11, 22), encoding="utf-8", late=late)
    assert _rows(hidden, "utf-8")[0]["订单状态"] == "卖家已发货"
    assert _rows(hidden, "utf-8")[0]["更新时间"] == "2026/11/22 01:00:00"


def test_write_is_idempotent_and_a_reexport_replaces_the_day(tmp_path) -> None:
    orders = [_order("A1"), _order("B1", "regional_b")]
    written = write_exports(orders, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "regional_a/order_20261120.csv",
        "regional_a/order_20261121.csv",
        "regional_b/order_20261120.csv",
        "regional_b/order_20261121.csv",
    ]
    assert write_exports(orders, tmp_path) == []  # same world: nothing touched

    path = tmp_path / "regional_a" / file_name(date(2026, 11, 20))
    before = path.stat().st_mtime
    fixed = [_order("A1", freight="0"), _order("A2")]
    assert reexport_day(fixed, tmp_path, "regional_a", date(2026, 11, 20)) == path
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    assert {r["订单编号"] for r in rows} == {"A1", "A2"}
    assert rows[0]["运费"] == "0.00"
    assert path.stat().st_mtime > before
