"""cpca placement of receiver addresses: batch parse, cache, flag what cannot be placed."""

from __future__ import annotations

import psycopg

from fulfillment.address_geo import enrich_addresses, parse_addresses


def test_parse_places_districts_with_coordinates_and_flags_the_rest() -> None:
    out = parse_addresses(
        ["浙江省杭州市西湖区文三路90号", "北京市朝阳区建国路88号", "1600 Amphitheatre Pkwy"]
    )
    assert list(out["district"][:2]) == ["西湖区", "朝阳区"]
    assert list(out["city"][:2]) == ["杭州市", "北京市"]  # municipality: city = province
    assert list(out["adcode"][:2]) == ["330106", "110105"]
    assert 30 < out["latitude"][0] < 31 and 120 < out["longitude"][0] < 121
    assert list(out["is_parsed"]) == [True, True, False]


def test_enrich_writes_one_row_per_order_and_reuses_the_cache(fresh_db) -> None:
    with psycopg.connect(fresh_db.url()) as conn:
        conn.execute(
            "create table intermediate.int_orders (channel text, platform_order_no text, "
            "province text, city text, district text, receiver_address text)"
        )
        conn.execute(
            "insert into intermediate.int_orders values "
            "('jd', '1', '浙江省', '杭州市', '西湖区', '文三路90号'),"
            "('jd', '2', '浙江省', '杭州市', '西湖区', '文三路90号'),"
            "('pdd', '3', null, null, null, 'somewhere abroad')"
        )
        conn.commit()
        first = enrich_addresses(conn)
        assert (first.orders, first.addresses_parsed, first.unparsed) == (3, 2, 1)
        rows = conn.execute(
            "select platform_order_no, district, is_parsed from raw.address_geo order by 1"
        ).fetchall()
        assert rows == [("1", "西湖区", True), ("2", "西湖区", True), ("3", None, False)]

        assert enrich_addresses(conn).orders == 0  # nothing changed: nothing to do
        conn.execute(
            "update intermediate.int_orders set receiver_address = '文三路91号' "
            "where platform_order_no = '2'"
        )
        conn.commit()
        again = enrich_addresses(conn)
        assert (again.orders, again.addresses_parsed) == (1, 1)
