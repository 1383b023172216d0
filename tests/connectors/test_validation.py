"""Edge rules in the raw loader, against a real PostgreSQL: each bad value is quarantined in
raw.rejected_rows with a reason naming the field and the value, while the good rows of the same
batch land; a 2099-dated row never blocks a later correction."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from connectors.channels_config import DbBridgeSettings
from connectors.db_bridge import pull
from connectors.raw_loader import RawOrder, load_orders, read_cursor
from connectors.raw_schema import ensure_raw_tables

BEIJING = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)


def _taobao(no: str, **over: object) -> RawOrder:
    payload: dict = {
        "tid": no,
        "total_fee": "100.00",
        "payment": "95.00",
        "post_fee": "5.00",
        "discount_fee": "10.00",
        "coupon_fee": "0",
        "created": "2026-11-20 17:00:00",
        "modified": "2026-11-20 18:00:00",
        "buyer_message": '=HYPERLINK("http://x")',
        "orders": {"order": [{"price": "50.00", "num": 2, "title": "+SUM(A1:A9)"}]},
    }
    items = over.pop("items", None)
    payload.update(over)
    if items is not None:
        payload["orders"] = {"order": items}
    return RawOrder(no, T0, payload)


def _load(conn: psycopg.Connection, channel: str, orders: list[RawOrder], **kw: object):
    return load_orders(conn, channel, orders, run_id="t", now=NOW, **kw)


def _reasons(conn: psycopg.Connection, source: str) -> dict[str, str]:
    rows = conn.execute(
        "select reason from raw.rejected_rows where source = %s", [source]
    ).fetchall()
    return {r.split(":", 1)[0].removeprefix("order "): r.split(": ", 1)[1] for (r,) in rows}


def _loaded(conn: psycopg.Connection, channel: str) -> set[str]:
    rows = conn.execute(f"select platform_order_no from raw.{channel}_orders").fetchall()
    return {r[0] for r in rows}


BAD_TAOBAO = {
    "neg-price": ({"items": [{"price": "-3.00", "num": 1}]}, ["orders.order[1].price '-3.00'"
                                                              " is negative"]),
    "neg-paid": ({"payment": "-95.00"}, ["payment '-95.00' is negative"]),
    "neg-freight": ({"post_fee": "-5"}, ["post_fee '-5' is negative"]),
    "neg-discount": ({"discount_fee": "-1"}, ["discount_fee '-1' is negative"]),
    "neg-coupon-fen": ({"coupon_fee": "-100"}, ["coupon_fee '-100' is negative"]),
    "absurd": (
        {"total_fee": "1000000000000.00"},
        ["total_fee '1000000000000.00' is out of range"],
    ),
    "huge": ({"payment": "1" + "0" * 40}, ["payment '1000000", "is out of range"]),
    "nan": ({"payment": "abc"}, ["payment 'abc' is not a number"]),
    "neg-qty": ({"items": [{"price": "1", "num": -2}]}, ["orders.order[1].num '-2' is negative"]),
    "frac-qty": ({"items": [{"price": "1", "num": "1.5"}]}, ["num '1.5' is not a whole number"]),
    "y1900": ({"created": "1900-01-01 00:00:00"}, ["created '1900-01-01 00:00:00'"
                                                   " is before 2000-01-01"]),
    "y2099": ({"modified": "2099-01-01 00:00:00"}, ["modified '2099-01-01 00:00:00'"
                                                    " is in the future"]),
    "garbage-time": ({"pay_time": "yesterday"}, ["pay_time 'yesterday' is not a valid time"]),
    "oversize": ({"buyer_message": "x" * 5000}, ["buyer_message has 5000 characters"
                                                 " (at most 2000)"]),
    "many": (
        {"payment": "-1", "created": "1900-01-01 00:00:00", "seller_memo": "y" * 3000},
        ["payment '-1' is negative", "created '1900-01-01 00:00:00' is before",
         "seller_memo has 3000"],
    ),
}  # fmt: skip


def test_each_bad_value_is_quarantined_with_its_reason_and_the_good_rows_land(fresh_db) -> None:
    good = [_taobao(f"ok-{i}") for i in range(3)]
    bad = [_taobao(no, **dict(over)) for no, (over, _) in BAD_TAOBAO.items()]
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["taobao"])
        stats = _load(conn, "taobao", good[:2] + bad + good[2:])
        assert (stats.inserted, stats.rejected) == (3, len(BAD_TAOBAO))
        assert _loaded(conn, "taobao") == {"ok-0", "ok-1", "ok-2"}
        reasons = _reasons(conn, "taobao")
        assert set(reasons) == set(BAD_TAOBAO)
        for no, (_, expected) in BAD_TAOBAO.items():
            for part in expected:
                assert part in reasons[no], (no, reasons[no])
        # formula strings are data, kept as text in raw
        note, title = conn.execute(
            "select payload ->> 'buyer_message', payload #>> '{orders,order,0,title}'"
            " from raw.taobao_orders where platform_order_no = 'ok-0'"
        ).fetchone()
        assert (note, title) == ('=HYPERLINK("http://x")', "+SUM(A1:A9)")


@pytest.mark.parametrize(
    ("channel", "payload", "expected"),
    [
        ("jd", {"orderPayment": "-1", "orderStartTime": "0001-01-01 00:00:00"},
         "orderPayment '-1' is negative"),
        ("douyin", {"pay_amount": "100000000000000", "update_time": 4070908800},
         "pay_amount '100000000000000' is out of range (yuan below 10000000000); "
         "update_time '4070908800' is in the future (after 2026-11-20T13:00:00+00:00)"),
        ("douyin", {"create_time": 1}, "create_time '1' is before 2000-01-01"),
        ("kuaishou", {"orderBaseInfo": {"payTime": 99999999999999999, "totalFee": -5}},
         "orderBaseInfo.totalFee '-5' is negative; orderBaseInfo.payTime '99999999999999999'"
         " is in the future (after"),
        ("youzan", {"full_order_info": {"pay_info": {"payment": "-9"},
                                        "orders": [{"num": 1}, {"num": "x"}]}},
         "pay_info.payment '-9' is negative; orders[2].num 'x' is not a whole number"),
        ("pdd", {"item_list": [{"goods_price": "1e400", "goods_count": 1}]},
         "item_list[1].goods_price '1e400' is out of range"),
        ("pos", {"paid_at": "2099-01-01T00:00:00+08:00", "items": [{"qty": "2000000"}]},
         "paid_at '2099-01-01T00:00:00+08:00' is in the future"),
    ],
)  # fmt: skip
def test_every_channel_shape_is_checked(fresh_db, channel: str, payload: dict, expected: str):
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, [channel])
        stats = _load(conn, channel, [RawOrder("bad", T0, payload), RawOrder("good", T0, {})])
        assert (stats.inserted, stats.rejected) == (1, 1)
        assert _loaded(conn, channel) == {"good"}
        assert expected in _reasons(conn, channel)["bad"]


def test_a_2099_row_never_blocks_a_later_correction(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["taobao"])
        _load(conn, "taobao", [_taobao("A", payment="90.00")])
        future = RawOrder("A", datetime(2099, 1, 1, tzinfo=UTC), _taobao("A").payload)
        stats = _load(conn, "taobao", [future])
        assert (stats.updated, stats.rejected) == (0, 1)
        assert "modified time 2099-01-01" in _reasons(conn, "taobao")["A"]
        fix = RawOrder("A", T0 + timedelta(minutes=5), {**_taobao("A").payload, "payment": "80"})
        assert _load(conn, "taobao", [fix]).updated == 1
        paid = conn.execute("select payload ->> 'payment' from raw.taobao_orders").fetchone()
        assert paid == ("80",)


def test_an_order_stored_with_a_future_time_before_the_rules_takes_corrections(fresh_db):
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["taobao"])
        _load(conn, "taobao", [_taobao("B")])
        conn.execute(  # as a 2099 update time landed before the edge rules existed
            "update raw.taobao_orders set source_modified_at = '2099-01-01T00:00:00Z'"
        )
        fix = RawOrder("B", T0 + timedelta(minutes=5), {**_taobao("B").payload, "payment": "1"})
        assert _load(conn, "taobao", [fix]).updated == 1
        row = conn.execute(
            "select source_modified_at, payload ->> 'payment' from raw.taobao_orders"
        )
        assert row.fetchone() == (T0 + timedelta(minutes=5), "1")


def test_an_oversize_payload_or_a_huge_integer_is_rejected_not_a_crash(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        ensure_raw_tables(conn, ["pos"])
        big = RawOrder("big", T0, {"blob": "z" * 300_000})
        wide = RawOrder("wide", T0, {"items": [{"qty": 10**30, "price": "1"}]})
        stats = _load(conn, "pos", [big, wide, RawOrder("ok", T0, {"paid_amount": "1.00"})])
        assert (stats.inserted, stats.rejected) == (1, 2)
        reasons = _reasons(conn, "pos")
        assert "payload has 300011 characters" in reasons["big"]
        assert f"items[1].qty '{10**30}' is not a whole number" in reasons["wide"]


def test_the_db_bridge_rejects_bad_rows_and_its_cursor_never_jumps_ahead(fresh_db, tmp_path):
    """A legacy ERP view (SQLite) with a negative amount, an absurd total and a 2099 update
    time: the good rows land, the bad ones are quarantined once (a re-pull adds no duplicate),
    and the cursor stays at now + skew, so a later change of a good row is still pulled."""
    path = tmp_path / "erp.db"
    db = sqlite3.connect(path)
    db.executescript(
        "create table orders (order_no text, total text, updated_at text);"
        "create view v_orders as select * from orders;"
    )
    rows = [("G1", "10.50", "2026-11-20 10:00:00"), ("G2", "8", "2026-11-20 10:05:00"),
            ("NEG", "-3", "2026-11-20 10:06:00"), ("ABS", "1e13", "2026-11-20 10:07:00"),
            ("FUT", "5", "2099-01-01 00:00:00")]  # fmt: skip
    db.executemany("insert into orders values (?, ?, ?)", rows)
    db.commit()
    cfg = DbBridgeSettings(
        view="v_orders", updated_at_column="updated_at", key_column="order_no",
        columns={"total": "paid_amount"},
    )  # fmt: skip
    with psycopg.connect(fresh_db.url()) as conn:
        report = pull(conn, "legacy", f"sqlite:///{path}", cfg)
        assert (report.stats.inserted, report.stats.rejected) == (2, 3)
        assert _loaded(conn, "legacy") == {"G1", "G2"}
        reasons = _reasons(conn, "legacy")
        assert "paid_amount '-3' is negative" in reasons["NEG"]
        assert "paid_amount '1e13' is out of range" in reasons["ABS"]
        assert reasons["FUT"].startswith("modified time 2098-12-31 16:00:00")  # Beijing 2099
        assert read_cursor(conn, "legacy") <= datetime.now(UTC)

        db.execute("update orders set total = '11.00', updated_at = ? where order_no = 'G1'",
                   [datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")])  # fmt: skip
        db.commit()
        again = pull(conn, "legacy", f"sqlite:///{path}", cfg)
        assert again.stats.updated == 1
        paid = conn.execute(
            "select payload ->> 'paid_amount' from raw.legacy_orders where platform_order_no = 'G1'"
        ).fetchone()[0]
        assert paid == "11.00"
        count = conn.execute("select count(*) from raw.rejected_rows where source = 'legacy'")
        assert count.fetchone()[0] == 3  # FUT pulled again, recorded once
    db.close()
