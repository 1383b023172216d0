"""DDL of the `raw` schema: one orders table per channel plus the loader's bookkeeping tables.

Every order table has the same shape, keyed by `(channel, platform_order_no)`, keeping the
source payload as JSONB, its modified time, a content hash, the load time and the run id.
"""

from __future__ import annotations

import re

import psycopg

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def orders_table(channel: str) -> str:
    """`raw.<channel>_orders`, after checking the channel is a safe identifier."""
    if not _IDENT.match(channel):
        raise ValueError(f"channel {channel!r} is not a valid identifier (a-z, 0-9, _)")
    return f"raw.{channel}_orders"


# Payloads are stored uncompressed in the row up to a page (TOAST_STORAGE): an order's JSON is
# ~2 KB, just over PostgreSQL's default 2 KB threshold, so pglz compressed nearly every one and
# each `payload ->> 'field'` in staging decompressed the whole value again (~40 fields per
# order): parsing raw.taobao_orders took 12.3 s for 224,500 orders compressed, 3.6 s plain.
TOAST_STORAGE = "toast_tuple_target = 8160"

ORDERS_DDL = """
create table if not exists {table} (
    channel            text        not null,
    platform_order_no  text        not null,
    source_modified_at timestamptz not null,
    payload            jsonb       not null,
    content_hash       text        not null,
    loaded_at          timestamptz not null default now(),
    run_id             text,
    primary key (channel, platform_order_no)
) with ({storage});
create index if not exists {index}_loaded_at on {table} (loaded_at);
"""

# tables made before TOAST_STORAGE: rows written from now on are stored plain
_STORAGE_MISSING = """
select c.relname
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'raw' and c.relname = any(%s)
    and not coalesce(c.reloptions @> %s, false)
"""

BOOKKEEPING_DDL = """
create schema if not exists raw;
create table if not exists raw.ingest_cursors (
    source        text primary key,
    cursor_value  timestamptz not null,
    detail        jsonb,
    run_id        text,
    updated_at    timestamptz not null default now()
);
create table if not exists raw.rejected_rows (
    id          bigserial primary key,
    source      text not null,
    file        text,
    line_no     integer,
    raw_text    text,
    reason      text not null,
    run_id      text,
    rejected_at timestamptz not null default now()
);
create table if not exists raw.loaded_files (
    source       text not null,
    path         text not null,
    size         bigint not null,
    mtime        timestamptz not null,
    content_hash text not null,
    encoding     text,
    rows_loaded  integer not null default 0,
    rows_rejected integer not null default 0,
    run_id       text,
    loaded_at    timestamptz not null default now(),
    primary key (source, path)
);
create table if not exists raw.webhook_events (
    id           bigserial primary key,
    channel      text not null,
    message_id   text not null,
    topic        text,
    order_nos    text[] not null default '{{}}',
    payload      jsonb not null,
    received_at  timestamptz not null default now(),
    processed_at timestamptz,
    unique (channel, message_id)
);
"""


def ensure_raw_tables(conn: psycopg.Connection, channels: list[str] | tuple[str, ...]) -> None:
    """Create the bookkeeping tables and one orders table per channel (idempotent)."""
    with conn.transaction():
        # serialise concurrent first runs: CREATE ... IF NOT EXISTS races on the catalog
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.raw_schema'))")
        conn.execute(BOOKKEEPING_DDL.format())
        for channel in channels:
            table = orders_table(channel)
            conn.execute(
                ORDERS_DDL.format(table=table, index=table.replace(".", "_"), storage=TOAST_STORAGE)
            )
        names = [orders_table(channel).removeprefix("raw.") for channel in channels]
        option = [TOAST_STORAGE.replace(" ", "")]  # as pg_class.reloptions spells it
        for (name,) in conn.execute(_STORAGE_MISSING, [names, option]).fetchall():
            conn.execute(f"alter table raw.{name} set ({TOAST_STORAGE})")
