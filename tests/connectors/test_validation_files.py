"""Edge rules on order files (the POS template, real PostgreSQL): each bad value is rejected
with its line and every problem of the row while the good rows of the file load; two rows of one
receipt that disagree on an amount are rejected, not merged; formula strings stay text; the drop
folder goes on past a file that breaks its load."""

from __future__ import annotations

import io
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from connectors.channels_config import load_channels
from connectors.csv_orders import load_file_bytes, rejected_rows
from connectors.file_drop import load_drop_folder

FMT = load_channels().channels["pos"].file_format
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
HEADER = (
    "小票号,门店编码,下单时间,付款时间,会员编号,顾客姓名,顾客手机,省,市,区,地址,商品编码,"
    "商品名称,数量,单价,运费,优惠金额,实收金额,订单状态,备注,更新时间"
)


def _row(no: str, **kw: str) -> str:
    f = {
        "created": "2026-11-20 10:00:00",
        "paid": "2026-11-20 10:00:30",
        "name": "张三",
        "sku": "SKU-1",
        "title": "商品",
        "qty": "2",
        "price": "29.95",
        "freight": "0.00",
        "discount": "5.00",
        "paid_amount": "54.90",
        "note": "",
        "modified": "2026-11-20 10:00:30",
    }
    f.update(kw)
    return (
        f"{no},POS-SH01,{f['created']},{f['paid']},M1,{f['name']},13800138000,上海市,上海市,"
        f"浦东新区,世纪大道100号,{f['sku']},{f['title']},{f['qty']},{f['price']},{f['freight']},"
        f"{f['discount']},{f['paid_amount']},已完成,{f['note']},{f['modified']}"
    )


# line: (row, the problems its reason must name)
BAD = {
    2: (_row("NEG-PRICE", price="-29.95"), ["单价 (price) '-29.95' is negative"]),
    3: (_row("NEG-PAID", paid_amount="-54.90"), ["实收金额 (paid_amount) '-54.90' is negative"]),
    4: (_row("NEG-FREIGHT", freight="-1"), ["运费 (freight) '-1.00' is negative"]),
    5: (_row("NEG-DISC", discount="-5"), ["优惠金额 (discount_amount) '-5.00' is negative"]),
    6: (
        _row("ABSURD", paid_amount="1000000000000.00"),
        ["实收金额 (paid_amount) '1000000000000.00' is out of range (yuan below 10000000000)"],
    ),
    7: (_row("HUGE-QTY", qty="9" * 30), ["数量 (qty) '" + "9" * 30 + "' is out of range"]),
    8: (
        _row("Y1900", created="1900-01-01 00:00:00"),
        ["下单时间 (created_at) '1900-01-01T00:00:00", "is before 2000-01-01"],
    ),
    9: (
        _row("Y2099", modified="2099-01-01 00:00:00"),
        ["更新时间 (modified_at) '2099-01-01T00:00:00+08:00' is in the future (after 2026-11-21"],
    ),
    10: (_row("LONG", note="长" * 2500), ["备注 has 2500 characters (at most 2000)"]),
    11: (
        _row("MANY", price="-1", paid="2099-12-31 00:00:00", name="名" * 3000),
        ["单价 (price) '-1.00' is negative", "付款时间 (paid_at) '2099-12-31", "顾客姓名 has 3000"],
    ),
    12: (_row("RCPT", sku="SKU-1"), ["rows of order RCPT disagree on 实收金额 (paid_amount)"]),
    13: (
        _row("RCPT", sku="SKU-2", paid_amount="60.00"),
        ["rows of order RCPT disagree on 实收金额 (paid_amount): 54.90, 60.00"],
    ),
}
FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3", "@SUM(A1)", '=HYPERLINK("http://x")']
GOOD = [_row(f"OK-{i}", note=f, title=f) for i, f in enumerate(FORMULAS)]


def _file() -> bytes:
    lines = [HEADER] + [row for row, _ in BAD.values()] + GOOD
    return "\n".join(lines).encode("utf-8")


def test_each_bad_row_of_a_file_is_rejected_with_all_its_problems(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        report = load_file_bytes(
            conn, _file(), source="pos", fmt=FMT, path="/drop/pos/day.csv", mtime=NOW,
            content_hash="h1", run_id="t", now=NOW,
        )  # fmt: skip
        assert report.status == "loaded", report.error
        assert (report.rows_loaded, report.rows_rejected) == (len(GOOD), len(BAD))
        reasons = {r["line_no"]: r["reason"] for r in rejected_rows(conn, "pos")}
        assert set(reasons) == set(BAD)
        for line, (_, parts) in BAD.items():
            for part in parts:
                assert part in reasons[line], (line, reasons[line])
        # formula strings are data: stored as text, unchanged
        rows = conn.execute(
            "select payload ->> 'buyer_note', payload #>> '{items,0,title}' from raw.pos_orders"
            " order by platform_order_no"
        ).fetchall()
    assert rows == [(f, f) for f in FORMULAS]


def _broken_xlsx() -> bytes:
    """A zip that looks like a workbook but whose XML does not parse (it used to crash)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<not xml")
    return buf.getvalue()


def test_the_drop_folder_goes_on_past_a_bad_file(fresh_db, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    files = {
        "a_broken.xlsx": _broken_xlsx(),
        "b_absurd.csv": "\n".join([HEADER, _row("P1", price="1" + "0" * 40), _row("P2")]),
        "c_good.csv": "\n".join([HEADER, _row("P3")]),
    }
    for i, (name, data) in enumerate(files.items()):  # queued oldest first, in this order
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.utime(path, (1_790_000_000 + i, 1_790_000_000 + i))
    with psycopg.connect(fresh_db.url()) as conn:
        reports = load_drop_folder(conn, "pos", folder=folder, run_id="t")
        got = {Path(r.file).name: (r.status, r.rows_loaded, r.rows_rejected) for r in reports}
        assert got == {
            "a_broken.xlsx": ("failed", 0, 0),
            "b_absurd.csv": ("loaded", 1, 1),
            "c_good.csv": ("loaded", 1, 0),
        }
        assert "not a readable XLSX workbook" in reports[0].error
        loaded = conn.execute("select platform_order_no from raw.pos_orders order by 1")
        assert [r[0] for r in loaded] == ["P2", "P3"]
        [reject] = rejected_rows(conn, "pos")
    assert reject["line_no"] == 2 and "is out of range (yuan below" in reject["reason"]
