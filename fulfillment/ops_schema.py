"""DDL of the `ops` schema: the decision tables OrderPulse writes (DESIGN.md "Contracts").

Fulfillment owns these tables; this module is their one definition. dbt reads them as the
source `ops` (dbt_project/models/staging/ops/_ops__sources.yml), whose Dagster asset keys are
the decision assets' own keys (`ops/<table>`), so the asset graph stays one connected,
acyclic picture. Every statement is idempotent: a warehouse created by an older release (the
contract columns only, no keys) is brought up to date in place.
"""

from __future__ import annotations

import psycopg

# (table, create statement with the contract columns, extra columns, unique key).
# The contract columns stay exactly as DESIGN.md names them; more may be added.
OPS_TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "routing_decisions": (
        """
        create table if not exists ops.routing_decisions (
            channel           text not null,
            platform_order_no text not null,
            decision          text,
            warehouse_id      text,
            carrier           text,
            rule              text,
            score             numeric,
            inputs            jsonb,
            decided_at        timestamptz
        )""",
        (
            "part smallint not null default 0",
            "promised_delivery_at timestamptz",
            "promise_days numeric",
            "config_version text",
            "input_hash text",
        ),
        ("channel", "platform_order_no", "part"),
    ),
    "risk_assessments": (
        """
        create table if not exists ops.risk_assessments (
            channel           text not null,
            platform_order_no text not null,
            score             numeric,
            signals           jsonb
        )""",
        ("assessed_at timestamptz", "config_version text", "input_hash text"),
        ("channel", "platform_order_no"),
    ),
    "review_queue": (
        """
        create table if not exists ops.review_queue (
            channel           text not null,
            platform_order_no text not null,
            score             numeric,
            hold_until        timestamptz,
            decision          text
        )""",
        ("queued_at timestamptz", "decided_at timestamptz", "reviewer text"),
        ("channel", "platform_order_no"),
    ),
    "merge_candidates": (
        """
        create table if not exists ops.merge_candidates (
            group_id          text,
            channel           text not null,
            platform_order_no text not null,
            reason            text
        )""",
        ("found_at timestamptz",),
        ("channel", "platform_order_no"),
    ),
    "inventory_locks": (
        """
        create table if not exists ops.inventory_locks (
            channel           text not null,
            platform_order_no text not null,
            sku               text,
            warehouse_id      text,
            qty               integer,
            state             text
        )""",
        ("locked_at timestamptz", "released_at timestamptz", "release_reason text"),
        ("channel", "platform_order_no", "sku", "warehouse_id"),
    ),
    "alerts": (
        """
        create table if not exists ops.alerts (
            rule              text not null,
            severity          text not null,
            subject           text not null,
            facts             jsonb,
            recipients        text[],
            created_at        timestamptz not null default now(),
            sent_at           timestamptz,
            delivery          text
        )""",
        ("id bigserial", "dedup_key text"),
        ("id",),
    ),
}


def ops_table_names() -> tuple[str, ...]:
    return tuple(OPS_TABLES)


def ensure_ops_tables(conn: psycopg.Connection) -> None:
    """Create or migrate every `ops` table (idempotent, safe under concurrent callers)."""
    with conn.transaction():
        # CREATE ... IF NOT EXISTS races on the catalog: serialise first runs
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.ops_schema'))")
        conn.execute("create schema if not exists ops")
        for table, (create, extra, key) in OPS_TABLES.items():
            conn.execute(create)
            for column in extra:
                conn.execute(f"alter table ops.{table} add column if not exists {column}")
            conn.execute(
                f"create unique index if not exists {table}_key on ops.{table} ({', '.join(key)})"
            )
