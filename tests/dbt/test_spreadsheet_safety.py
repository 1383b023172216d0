"""CSV/formula injection: formula strings in an order's free text stay text in `raw`, and after
one `dbt build` every text value in `marts` that a spreadsheet would run as a formula (a leading
= + - @, tab or CR) carries the OWASP leading quote, masked values included; numbers stay
numbers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from connectors.raw_loader import RawOrder, load_orders
from connectors.raw_schema import ensure_raw_tables
from kernel.database import PgConn
from sandbox.gateways.samples import sample_orders
from tests.dbt.conftest import drop_database, new_database, run_dbt
from tests.dbt.sample_raw import END, _h5mall_payload

FORMULAS = {
    "buyer_note": "=cmd|' /C calc'!A0",
    "seller_note": "@SUM(A1:A9)",
    "receiver_name": '=HYPERLINK("http://evil.example","x")',
    "receiver_city": "+SUM(1+1)",
    "buyer_id": "-2+3",
    "carrier": "\t=1+1",
}
TITLE = '=HYPERLINK("http://evil.example")'


def _rows() -> list[RawOrder]:
    rows = []
    for order in sample_orders("h5mall", 2, end=END):
        payload = {**_h5mall_payload(order), **FORMULAS}
        payload["items"] = [{**item, "title": TITLE} for item in payload["items"]]
        rows.append(RawOrder(order.platform_order_no, order.modified_at, payload))
    return rows


@pytest.mark.slow  # one dbt build of the models (about 15 s on an idle machine)
def test_marts_text_is_spreadsheet_safe_and_raw_keeps_the_text(pg: PgConn, tmp_path: Path):
    conn = new_database(pg)
    try:
        rows = _rows()
        with psycopg.connect(conn.url()) as db:
            ensure_raw_tables(db, ["h5mall"])
            assert load_orders(db, "h5mall", rows, run_id="t").inserted == len(rows)
        # seeds and models, not the data tests (test_dbt_build runs those): one quick build
        run_dbt(conn, tmp_path, "build", "--exclude-resource-type", "test", "unit_test")
        with psycopg.connect(conn.url()) as db:
            raw_note = db.execute("select payload ->> 'buyer_note' from raw.h5mall_orders")
            assert {r[0] for r in raw_note} == {FORMULAS["buyer_note"]}

            order = rows[0]
            got = db.execute(
                "select buyer_note, seller_note, receiver_name, city, buyer_id, carrier,"
                " paid_amount from marts.fct_orders where platform_order_no = %s",
                [order.platform_order_no],
            ).fetchone()
            name = FORMULAS["receiver_name"]
            assert got == (
                "'" + FORMULAS["buyer_note"],
                "'" + FORMULAS["seller_note"],
                "'=" + "*" * (len(name) - 1),  # masked first, then made safe
                "'" + FORMULAS["receiver_city"],
                "'" + FORMULAS["buyer_id"],
                "'" + FORMULAS["carrier"],
                Decimal(order.payload["paid_amount"]),  # numbers stay numbers
            )
            titles = db.execute("select distinct title from marts.fct_order_items").fetchall()
            assert titles == [("'" + TITLE,)]
            holo = db.execute(
                "select buyer_note, receiver_name, items_json -> 0 ->> 'title'"
                " from marts.order_holographic where platform_order_no = %s",
                [order.platform_order_no],
            ).fetchone()
            assert holo == (got[0], got[2], "'" + TITLE)
            buyers = db.execute("select buyer_id, main_province from marts.dim_buyers").fetchall()
            assert buyers and all(b[0] == "'-2+3" for b in buyers)

            # and no text value anywhere in marts would run as a formula
            unsafe = []
            for table, column in db.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = 'marts' and data_type in ('text', 'character varying')"
            ).fetchall():
                query = sql.SQL("select count(*) from marts.{} where {} ~ %s").format(
                    sql.Identifier(table), sql.Identifier(column)
                )
                if db.execute(query, ["^[-=+@\t\r]"]).fetchone()[0]:
                    unsafe.append(f"{table}.{column}")
            assert unsafe == []
    finally:
        drop_database(pg, conn)
