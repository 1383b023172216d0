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
            "wms_sent_at timestamptz",
            "wms_status text",
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
        (
            "assessed_at timestamptz",
            "config_version text",
            "input_hash text",
            # fulfillment/risk_store.py: the rules' own score and the learned model that
            # scored the order beside them (null: the rules alone)
            "rule_score numeric",
            "model_version text",
            "model_probability float8",
        ),
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
        (
            "queued_at timestamptz",
            "decided_at timestamptz",
            "reviewer text",
            "note text",
            # who held it: risk (the default, risk_store's rows) or cs_escalation
            # (fulfillment/cs_holds.py, with the escalated orders and tickets as evidence)
            "hold_reason text not null default 'risk'",
            "hold_evidence jsonb",
        ),
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
        (
            "locked_at timestamptz",
            "released_at timestamptz",
            "release_reason text",
            "basis text",
            "paid_at timestamptz",
            "updated_at timestamptz",
        ),
        ("channel", "platform_order_no", "sku", "warehouse_id"),
    ),
    # bookkeeping of the stock locks' passes (fulfillment/inventory_store.py): where the last
    # pass began, so the next reads only the orders changed since
    "inventory_lock_passes": (
        """
        create table if not exists ops.inventory_lock_passes (
            pass              boolean not null default true check (pass),
            snapshot          text not null,
            ran_at            timestamptz not null,
            full_at           timestamptz not null,
            settings          text not null,
            recheck_at        timestamptz
        )""",
        (),
        ("pass",),
    ),
    "pause_sale": (
        """
        create table if not exists ops.pause_sale (
            sku               text not null,
            reason            text,
            since             timestamptz
        )""",
        ("sellable integer", "threshold integer", "updated_at timestamptz"),
        ("sku",),
    ),
    "stock_reconciliation": (
        """
        create table if not exists ops.stock_reconciliation (
            sku               text not null,
            warehouse_id      text not null,
            platform          text not null,
            wms_qty           integer,
            platform_qty      integer,
            diff              integer,
            checked_at        timestamptz
        )""",
        # fulfillment/stock_reconciliation.py: one row per SKU and platform off by more than
        # the tolerance (warehouse_id 'ALL': platforms show one number over every warehouse)
        (
            "wms_on_hand integer",
            "wms_locked integer",
            "platform_withheld integer",
            "platform_paused boolean",
            "tolerance integer",
            "first_seen_at timestamptz",
        ),
        ("sku", "warehouse_id", "platform"),
    ),
    # what each platform's stock API last showed per SKU, and what OrderPulse last pushed there
    # (fulfillment/inventory_platform_push.py): a push sends only what changed since
    "platform_stock": (
        """
        create table if not exists ops.platform_stock (
            channel           text not null,
            sku               text not null,
            sellable          integer,
            withheld          integer,
            paused            boolean,
            read_at           timestamptz
        )""",
        ("pushed_withheld integer", "pushed_paused boolean", "pushed_at timestamptz"),
        ("channel", "sku"),
    ),
    # orders stuck past the red line (quality/stuck_orders.py): one row per order while it
    # stays stuck, with the reason code derived from its data; gone once it moves on
    "stuck_orders": (
        """
        create table if not exists ops.stuck_orders (
            channel           text not null,
            platform_order_no text not null,
            status            text,
            since             timestamptz,
            reason_code       text
        )""",
        ("flagged_at timestamptz", "hours_stuck numeric", "reason_detail text"),
        ("channel", "platform_order_no"),
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
        (
            "id bigserial",
            "dedup_key text",
            # quality/alerts.py: what the email shows and how its delivery went
            "chart jsonb",
            "detail jsonb",
            "attachments jsonb",
            "attempts integer not null default 0",
            "last_error text",
            "robot_delivery text",
            "robot_sent_at timestamptz",
        ),
        ("id",),
    ),
}


def ops_table_names() -> tuple[str, ...]:
    return tuple(OPS_TABLES)


def _ops_catalog(conn: psycopg.Connection) -> tuple[set[tuple[str, str]], set[str]]:
    """The (table, column) pairs and the index names of the `ops` schema as they stand."""
    columns = set(
        conn.execute(
            "select table_name::text, column_name::text from information_schema.columns "
            "where table_schema = 'ops'"
        ).fetchall()
    )
    indexes = {
        r[0] for r in conn.execute("select indexname from pg_indexes where schemaname = 'ops'")
    }
    return columns, indexes


def _complete(columns: set[tuple[str, str]], indexes: set[str]) -> bool:
    """Every ops table, extra column and key index is there: nothing for ensure_ops_tables."""
    tables = {table for table, _ in columns}
    return all(
        table in tables
        and f"{table}_key" in indexes
        and all((table, column.split()[0]) in columns for column in extra)
        for table, (_, extra, _) in OPS_TABLES.items()
    )


def ensure_ops_tables(conn: psycopg.Connection) -> None:
    """Create or migrate every `ops` table (idempotent, safe under concurrent callers)."""
    # The usual case, everything there, takes no lock: the advisory lock below is held to
    # the end of the caller's transaction, and a decision asset that ensures its tables and
    # then computes for seconds in that transaction made every other decision asset wait
    # (6.5 s of a 10,000-order cycle at 1,000,000 orders).
    if _complete(*_ops_catalog(conn)):
        return
    with conn.transaction():
        # CREATE ... IF NOT EXISTS races on the catalog: serialise first runs
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.ops_schema'))")
        conn.execute("create schema if not exists ops")
        # touch only what is missing: ALTER TABLE and CREATE INDEX lock the table even when
        # there is nothing to do, and a decision run holding it would deadlock with them
        columns, indexes = _ops_catalog(conn)
        for table, (create, extra, key) in OPS_TABLES.items():
            conn.execute(create)
            for column in extra:
                if (table, column.split()[0]) not in columns:
                    conn.execute(f"alter table ops.{table} add column if not exists {column}")
            if f"{table}_key" not in indexes:
                conn.execute(
                    f"create unique index if not exists {table}_key "
                    f"on ops.{table} ({', '.join(key)})"
                )
