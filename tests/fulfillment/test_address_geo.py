"""cpca placement of receiver addresses: batch parse, cache, flag what cannot be placed."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import psycopg

from fulfillment.address_geo import enrich_addresses, parse_addresses, parse_addresses_split


def test_parse_places_districts_with_coordinates_and_flags_the_rest() -> None:
    out = parse_addresses(
        ["浙江省杭州市西湖区文三路90号", "北京市朝阳区建国路88号", "1600 Amphitheatre Pkwy"]
    )
    assert list(out["district"][:2]) == ["西湖区", "朝阳区"]
    assert list(out["city"][:2]) == ["杭州市", "北京市"]  # municipality: city = province
    assert list(out["adcode"][:2]) == ["330106", "110105"]
    assert 30 < out["latitude"][0] < 31 and 120 < out["longitude"][0] < 121
    assert list(out["is_parsed"]) == [True, True, False]


ADDRESSES = [
    "浙江省杭州市西湖区文三路90号", "北京市朝阳区建国路88号", "1600 Amphitheatre Pkwy",
    "广东省深圳市南山区科技园", "上海市浦东新区世纪大道100号",
]  # fmt: skip


def test_a_parse_shared_with_a_helper_process_gives_the_same_rows_in_order() -> None:
    one = parse_addresses(ADDRESSES)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as helpers:
        shared = parse_addresses_split(ADDRESSES, helpers, parts=3)
    pd.testing.assert_frame_equal(shared, one)


# as dbt writes int_orders: each row stamped with its writing transaction (`_written_xid`)
INT_ORDERS = (
    "create table intermediate.int_orders (channel text, platform_order_no text, "
    "province text, city text, district text, receiver_address text, "
    "_written_xid bigint not null default pg_current_xact_id()::text::bigint)"
)


def _load_orders(conn: psycopg.Connection, *more: str) -> None:
    """int_orders with two orders at one address (jd 1 and 2) and the `more` rows after."""
    conn.execute(INT_ORDERS)
    conn.execute(
        "insert into intermediate.int_orders values "
        + ", ".join(
            (
                "('jd', '1', '浙江省', '杭州市', '西湖区', '文三路90号')",
                "('jd', '2', '浙江省', '杭州市', '西湖区', '文三路90号')",
                *more,
            )
        )
    )
    conn.commit()


# after _load_orders' two: a third order elsewhere and one cpca cannot place
TWO_MORE = (
    "('jd', '3', '北京市', '北京市', '朝阳区', '建国路88号')",
    "('pdd', '4', null, null, null, 'somewhere abroad')",
)
FOUR_PLACED = [
    ("1", "西湖区", True), ("2", "西湖区", True), ("3", "朝阳区", True), ("4", None, False),
]  # fmt: skip


def _placed(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select platform_order_no, district, is_parsed from raw.address_geo order by 1"
    ).fetchall()


def test_enrich_writes_one_row_per_order_and_reuses_the_cache(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        _load_orders(conn, "('pdd', '3', null, null, null, 'somewhere abroad')")
        first = enrich_addresses(conn)
        assert (first.orders, first.addresses_parsed, first.unparsed) == (3, 2, 1)
        rows = conn.execute(
            "select platform_order_no, district, is_parsed from raw.address_geo order by 1"
        ).fetchall()
        assert rows == [("1", "西湖区", True), ("2", "西湖区", True), ("3", None, False)]

        assert enrich_addresses(conn).orders == 0  # nothing changed: nothing to do
        conn.execute(
            "update intermediate.int_orders set receiver_address = '文三路91号', "
            "_written_xid = pg_current_xact_id()::text::bigint where platform_order_no = '2'"
        )
        conn.commit()
        again = enrich_addresses(conn)
        assert (again.orders, again.addresses_parsed) == (1, 1)


def test_a_pass_reads_only_the_orders_written_since_the_last_one_began(fresh_db) -> None:
    """A pass looks at the orders int_orders wrote since the last pass began (their
    `_written_xid`, against the snapshot it stored), not at every order: an order placed
    before and not written since is not read again, even when its placement is gone; one
    written while a pass ran is read by the next. Without a stored pass, every order."""
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(INT_ORDERS)
        conn.execute(
            "insert into intermediate.int_orders (channel, platform_order_no, receiver_address) "
            "select 'jd', g::text, '文三路' || g || '号' from generate_series(1, 20) g"
        )
        conn.commit()
        assert enrich_addresses(conn).orders == 20
        # a placement lost by hand: the order is not written again, so it is not read again
        conn.execute("delete from raw.address_geo where platform_order_no = '1'")
        # a new order and a changed one, written by another transaction after the pass
        with psycopg.connect(fresh_db.url()) as loader:
            loader.execute(
                "insert into intermediate.int_orders (channel, platform_order_no, "
                "receiver_address) values ('jd', '21', '文三路21号')"
            )
            loader.execute(
                "update intermediate.int_orders set receiver_address = '文二路2号', "
                "_written_xid = pg_current_xact_id()::text::bigint "
                "where platform_order_no = '2'"
            )
        conn.commit()
        second = enrich_addresses(conn)
        placed = dict(conn.execute("select platform_order_no, address_hash from raw.address_geo"))
        assert second.orders == 2 and "1" not in placed and {"2", "21"} <= set(placed)
        assert enrich_addresses(conn).orders == 0
        # without a stored pass: every order, the lost placement found again
        conn.execute("delete from raw.address_geo_passes")
        conn.commit()
        assert enrich_addresses(conn).orders == 1
        placed = conn.execute("select count(*) from raw.address_geo").fetchone()[0]
        assert placed == 21


def test_a_pass_in_batches_places_and_counts_as_one_read_whole(fresh_db) -> None:
    """A pass reads its orders a batch at a time (a first pass over 1,000,000 orders read
    whole held 1.4 GiB): an address parsed by an earlier batch is not parsed again nor
    counted as a cache hit, and one cached by an earlier pass is a hit."""
    with psycopg.connect(fresh_db.url()) as conn:
        _load_orders(conn, *TWO_MORE)
        first = enrich_addresses(conn, batch_orders=1)
        assert (first.orders, first.addresses_parsed, first.cache_hits, first.unparsed) == (
            4, 3, 0, 1,
        )  # fmt: skip
        assert _placed(conn) == FOUR_PLACED
        assert conn.execute("select count(*) from raw.address_geo_cache").fetchone()[0] == 3

        conn.execute("delete from raw.address_geo_passes")
        conn.execute("delete from raw.address_geo where platform_order_no in ('1', '3')")
        conn.commit()
        again = enrich_addresses(conn, batch_orders=1)
        assert (again.orders, again.addresses_parsed, again.cache_hits) == (2, 0, 2)


def test_a_first_pass_shared_with_a_helper_places_as_one_process_does(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        _load_orders(conn, *TWO_MORE)
        shared = enrich_addresses(conn, split_from=1, processes=2)
        assert (shared.orders, shared.addresses_parsed, shared.unparsed) == (4, 3, 1)
        assert _placed(conn) == FOUR_PLACED
