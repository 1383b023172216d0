"""Crafted stand-ins for the mart tables the detectors read, for fast detector tests.

Each table has the real model's column names and types (read from its dbt SQL/YAML) for the
columns the detectors use; `test_detectors_on_dbt_marts.py` runs every detector on a real dbt
build to prove the SQL matches the real marts. The `ops` tables are the real ones
(fulfillment/ops_schema.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from fulfillment.ops_schema import ensure_ops_tables

TABLES = {
    # dbt_project/models/intermediate/int_orders.sql (a subset of its columns)
    "intermediate.int_orders": """
        channel text, platform_order_no text, created_at timestamptz, paid_at timestamptz
    """,
    # dbt_project/models/marts/order_holographic.sql
    "marts.order_holographic": """
        channel text, platform_order_no text, unified_status text, province text,
        is_address_parsed boolean, is_cross_border boolean, hs_code text,
        declared_value numeric, risk_state text, review_decision text, routing_decision text,
        had_pickup_failure boolean default false, status_violations bigint default 0,
        warehouse_id text, warehouse_name text, status_entered_at timestamptz,
        paid_at timestamptz, created_at timestamptz, shipped_at timestamptz, carrier text,
        promised_delivery_at timestamptz, actual_delivery_at timestamptz,
        is_delivery_late boolean default false, last_track_event text, after_sale_kind text,
        after_sale_at timestamptz, modified_at timestamptz
    """,
    # dbt_project/models/marts/bi/fct_delivery_timeout_region_daily.sql
    "marts.fct_delivery_timeout_region_daily": """
        province text, day date, orders_due bigint, orders_late bigint, timeout_rate numeric
    """,
    # dbt_project/models/marts/bi/fct_cross_platform_price_diff.sql
    "marts.fct_cross_platform_price_diff": """
        sku text, channel text, lines bigint, units bigint, avg_unit_price numeric,
        min_unit_price numeric, max_unit_price numeric, cheapest_channel_price numeric,
        channels_selling bigint, price_diff_rate numeric, is_above_threshold boolean
    """,
    # dbt_project/models/marts/fct_cs_tickets.sql
    "marts.fct_cs_tickets": """
        ticket_id text, channel text, platform_order_no text, buyer_id text, topic text,
        ticket_text text, ticket_status text, priority text, is_open boolean,
        opened_at timestamptz, updated_at timestamptz, hours_to_last_update numeric
    """,
    # dbt_project/models/marts/order_health_daily.sql
    "marts.order_health_daily": """
        day date, channel text, ohi numeric(5, 2), timeliness numeric(5, 2),
        completeness numeric(5, 2), consistency numeric(5, 2), accuracy numeric(5, 2),
        controllability numeric(5, 2), orders bigint, stuck_orders bigint
    """,
}


def create(conn: psycopg.Connection, *tables: str) -> None:
    """Create the named stand-in tables and every real `ops` table."""
    for table in tables:
        conn.execute(f"create table {table} ({TABLES[table]})")
    ensure_ops_tables(conn)


def insert(conn: psycopg.Connection, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert dict rows; a column a row leaves out takes the table's default."""
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_columns.setdefault(tuple(row), []).append(row)
    with conn.cursor() as cur:
        for columns, group in by_columns.items():
            cur.executemany(
                f"insert into {table} ({', '.join(columns)}) "
                f"values ({', '.join(['%s'] * len(columns))})",
                [[row[c] for c in columns] for row in group],
            )
