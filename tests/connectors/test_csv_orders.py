"""Order files: encodings, column maps, amounts, dates, rejects, XLSX (real PostgreSQL)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import psycopg
import pytest
from openpyxl import Workbook

from connectors.channels_config import load_channels
from connectors.csv_orders import (
    FileUnreadable,
    detect_encoding,
    load_file_bytes,
    parse_amounts,
    parse_chunks,
    parse_orders,
    parse_times,
    rejected_rows,
)
from connectors.raw_schema import ensure_raw_tables

FMT = load_channels().channels["regional_a"].file_format
MTIME = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
HEADER = (
    "订单编号,店铺,下单时间,付款时间,买家,收货人,手机,省,市,区,详细地址,商品编码,商品名称,"
    "数量,单价,运费,店铺优惠,平台优惠,实付金额,订单状态,买家留言,卖家备注,更新时间"
)


def _row(no: str, sku: str = "SKU1", qty: str = "1", price: str = '"1,299.00"', **kw) -> str:
    f = {
        "created": "2026/11/20 10:00:00",
        "paid": "2026/11/20 10:01:00",
        "note": "",
        "modified": "2026/11/20 10:01:00",
        "address": '"文三路1号, 2单元"',
    }
    f.update(kw)
    return (
        f"{no},S1,{f['created']},{f['paid']},B1,张三,13800001111,浙江省,杭州市,西湖区,"
        f'{f["address"]},{sku},商品,{qty},{price},10.00,5.00,0.00,"1,304.00",等待卖家发货,'
        f"{f['note']},,{f['modified']}"
    )


# line numbers:                                   1 header
GOOD_AND_BAD = "\r\n".join(
    [
        HEADER,
        _row("A1", note='"请尽快发货,谢谢\n""急"""'),  # 2-3: one record over two lines
        _row("A1", sku="SKU2", qty="2", price="￥59.9"),  # 4
        _row("", sku="SKU9"),  # 5  missing order number
        _row("C1", price="一百"),  # 6  unparsable amount
        _row("D1", created="2026-13-45 10:00"),  # 7  unparsable date
        _row("E1") + ",extra",  # 8  wrong column count
        _row("F1", qty="x"),  # 9  unparsable quantity
        _row("C1", sku="SKU2"),  # 10 sibling of the bad C1 row
        "",  # 11 blank line, ignored
        _row("G1", created="2026-11-20T02:00:00Z", paid="", modified=""),  # 12
    ]
).encode("utf-8")


def test_good_rows_load_and_each_bad_row_is_rejected_with_line_and_reason(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        report = load_file_bytes(
            conn, GOOD_AND_BAD, source="regional_a", fmt=FMT, path="/in/order_20261120.csv",
            mtime=MTIME, content_hash="h1",
        )  # fmt: skip
        assert report.status == "loaded" and report.encoding == "utf-8"
        assert (report.rows, report.rows_rejected, report.rows_loaded) == (9, 6, 3)
        assert report.orders.inserted == 2

        rejects = {
            r["line_no"]: r for r in rejected_rows(conn, "regional_a", "/in/order_20261120.csv")
        }
        assert {n: r["reason"] for n, r in rejects.items()} == {
            5: "missing 订单编号 (platform_order_no)",
            6: "unparsable amount in 单价: '一百'",
            7: "unparsable date in 下单时间: '2026-13-45 10:00'",
            8: "wrong column count: 24 fields, the header has 23",
            9: "unparsable quantity in 数量: 'x'",
            10: "order C1 has a rejected row (line 6)",
        }
        assert rejects[8]["raw_text"].endswith(",extra")
        assert rejects[6]["raw_text"].startswith("C1,S1,2026/11/20 10:00:00")

        rows = dict(conn.execute("select platform_order_no, payload from raw.regional_a_orders"))
        assert set(rows) == {"A1", "G1"}
        a1 = rows["A1"]
        assert a1["订单编号"] == "A1" and a1["实付金额"] == "1,304.00"
        assert a1["buyer_note"] == '请尽快发货,谢谢\n"急"'
        assert a1["receiver_address"] == "文三路1号, 2单元"
        assert a1["created_at"] == "2026-11-20T10:00:00+08:00"
        assert a1["paid_amount"] == "1304.00" and a1["discount_amount"] == "5.00"
        assert [(i["sku"], i["qty"], i["price"], i["单价"]) for i in a1["items"]] == [
            ("SKU1", 1, "1299.00", "1,299.00"),
            ("SKU2", 2, "59.90", "￥59.9"),
        ]
        assert a1["goods_value"] == "1418.80"
        assert a1["_file"] == "order_20261120.csv"
        g1 = rows["G1"]
        assert g1["created_at"] == "2026-11-20T10:00:00+08:00"  # ISO with Z, shown in Beijing
        assert g1["paid_at"] is None
        modified = conn.execute(
            "select source_modified_at from raw.regional_a_orders where platform_order_no = 'G1'"
        ).fetchone()[0]
        assert modified == MTIME  # no 更新时间: the file's mtime

        loaded = conn.execute(
            "select encoding, rows_loaded, rows_rejected from raw.loaded_files"
        ).fetchall()
        assert loaded == [("utf-8", 3, 6)]


def test_loading_a_file_again_replaces_its_rejects(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        for _ in range(2):
            load_file_bytes(
                conn, GOOD_AND_BAD, source="regional_a", fmt=FMT, path="/in/f.csv",
                mtime=MTIME, content_hash="h1",
            )  # fmt: skip
        assert len(rejected_rows(conn, "regional_a")) == 6


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_every_encoding_parses_to_the_same_orders(codec: str) -> None:
    text = GOOD_AND_BAD.decode("utf-8")
    if codec == "gb18030":  # a name outside GBK forces GB18030
        text = text.replace("张三", "𠮷三")
    data = text.encode(codec)
    assert detect_encoding(data) == codec
    parsed = parse_orders(data, "order_20261120.csv", FMT, fallback_modified_at=MTIME)
    base = parse_orders(text.encode("utf-8"), "order_20261120.csv", FMT, fallback_modified_at=MTIME)
    assert parsed.encoding == codec
    assert parsed.orders == base.orders and parsed.rejects == base.rejects


def test_amounts_and_times_are_parsed_column_wise() -> None:
    values = pd.Series(["1,299.00", "¥59.9", "￥0", "59.9元", " 7 ", "", "-5.5", "1.2.3", "abc"])
    normal, bad = parse_amounts(values.str.strip())
    assert normal.tolist() == ["1299.00", "59.90", "0.00", "59.90", "7.00", "", "-5.50", "", ""]
    assert bad.tolist() == [False] * 7 + [True, True]

    times = pd.Series(
        ["2026/11/20 10:00:00", "2026-11-20 10:00", "2026-11-20T02:00:00+00:00", "", "20/11/2026"]
    )
    iso, bad = parse_times(times, FMT.date_formats, "Asia/Shanghai")
    assert iso.tolist() == [
        "2026-11-20T10:00:00+08:00",
        "2026-11-20T10:00:00+08:00",
        "2026-11-20T10:00:00+08:00",
        "",
        "",
    ]
    assert bad.tolist() == [False, False, False, False, True]


def test_unreadable_files_fail_whole_with_a_clear_error(fresh_db) -> None:
    with pytest.raises(FileUnreadable, match="not text in UTF-8"):
        parse_orders(b"\xff\xfe\x00\x81\xff" * 10, "x.csv", FMT, fallback_modified_at=MTIME)
    with pytest.raises(FileUnreadable, match=r"lacks required column\(s\) 订单编号"):
        parse_orders("店铺,下单时间\nS1,2026/11/20".encode(), "x.csv", FMT,
                     fallback_modified_at=MTIME)  # fmt: skip
    with pytest.raises(FileUnreadable, match="not a readable XLSX"):
        parse_orders(b"PK\x03\x04broken", "x.xlsx", FMT, fallback_modified_at=MTIME)
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["regional_a"])
        report = load_file_bytes(
            conn, b"", source="regional_a", fmt=FMT, path="/in/empty.csv", mtime=MTIME,
            content_hash="h0",
        )  # fmt: skip
        assert report.status == "failed" and "empty file" in report.error
        assert "FAILED" in report.render() and report.rows_loaded == 0
        assert conn.execute("select count(*) from raw.loaded_files").fetchone()[0] == 0


def test_xlsx_rows_use_sheet_row_numbers() -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    cells = [
        "X1", "S1", datetime(2026, 11, 20, 10, 0), None, "B1", "张三", "13800001111", "浙江省",
        "杭州市", "西湖区", "文三路1号", "SKU1", "商品", 2, 59.9, 0, 0, 0, 119.8, "等待卖家发货",
        None, None, "2026-11-20 10:00:00",
    ]  # fmt: skip
    sheet.append(cells)
    sheet.append(["X2", "S1", "not a date"] + cells[3:])
    buf = io.BytesIO()
    book.save(buf)
    parsed = parse_orders(buf.getvalue(), "pos.xlsx", FMT, fallback_modified_at=MTIME)
    assert parsed.encoding == "xlsx"
    [order] = parsed.orders
    assert order.platform_order_no == "X1"
    assert order.payload["created_at"] == "2026-11-20T10:00:00+08:00"
    item = order.payload["items"][0]
    assert (item["qty"], item["price"], item["单价"]) == (2, "59.90", "59.9")
    assert [(r.line_no, r.reason) for r in parsed.rejects] == [
        (3, "unparsable date in 下单时间: 'not a date'")
    ]


def test_a_big_file_is_parsed_in_chunks_of_whole_orders() -> None:
    """Chunked parsing (how files load) gives what parsing the whole file gives: every order
    whole in one chunk, the same payloads, rejects and line numbers; a file whose rows of one
    order are apart is parsed whole."""
    rows = []
    for i in range(12):  # orders of 1..3 rows, one of them with a bad row
        for k in range(i % 3 + 1):
            price = "一百" if (i, k) == (7, 1) else "9.90"
            rows.append(_row(f"K{i:02d}", sku=f"SKU{k}", price=price))
    grouped = "\n".join([HEADER, *rows]).encode("utf-8")
    whole = parse_orders(grouped, "order_20261120.csv", FMT, fallback_modified_at=MTIME)
    parts = list(parse_chunks(grouped, "order_20261120.csv", FMT, fallback_modified_at=MTIME,
                              chunk_rows=4))  # fmt: skip
    assert len(parts) > 3
    named = [no for p in parts for no in p.order_nos]
    assert len(named) == len(set(named)) == 12  # no order split across chunks
    assert sorted((o for p in parts for o in p.orders), key=lambda o: o.platform_order_no) == (
        sorted(whole.orders, key=lambda o: o.platform_order_no)
    )
    assert [r for p in parts for r in p.rejects] == whole.rejects
    assert {r.line_no for r in whole.rejects} == {15, 16}  # K07: its bad row and its sibling

    apart = "\n".join([HEADER, *rows[:3], *rows[4:], rows[3]]).encode("utf-8")  # K02 apart
    [single] = parse_chunks(apart, "order_20261120.csv", FMT, fallback_modified_at=MTIME,
                            chunk_rows=4)  # fmt: skip
    assert len(single.orders) == 11 and single.rows == len(rows)
