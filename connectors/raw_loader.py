"""The raw loader every source shares.

Rows stream through psycopg 3 `COPY` into a temp table, then one set-based
`INSERT ... ON CONFLICT (channel, platform_order_no) DO UPDATE` applies them, only where the
source's modified time is newer (a late, older update never overwrites a newer one) or, at the
same modified time, the content changed. Re-running a load is a no-op. The cursor of the source
advances in the same transaction as the rows it covers.

Before the merge, the edge rules (`connectors.validation`) move every staged row that breaks
one (an amount the warehouse cannot hold, a negative price, a 1900 or 2099 time, oversize text)
to `raw.rejected_rows` with its reasons: a bad row fails alone, the rest of the batch loads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from connectors.raw_schema import TOAST_STORAGE, orders_table
from connectors.validation import LIMITS, reject_invalid_staged, reject_rows

_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class RawOrder:
    """One order as a source delivered it."""

    platform_order_no: str
    modified_at: datetime
    payload: dict[str, Any]


@dataclass
class LoadStats:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # orders that broke an edge rule (in raw.rejected_rows)

    def __iadd__(self, other: LoadStats) -> LoadStats:
        self.received += other.received
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        return self

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class CursorUpdate:
    """Move `source`'s cursor to `value` in the same transaction as a load."""

    source: str
    value: datetime
    detail: dict[str, Any] = field(default_factory=dict)


_STAGE = f"""
create temp table if not exists _raw_stage (
    platform_order_no  text,
    source_modified_at timestamptz,
    payload            jsonb,
    content_hash       text
) with ({TOAST_STORAGE}) on commit delete rows
"""

# A stage of 5,000 orders holds ~10 MB of JSON, more than PostgreSQL's default 8 MB of buffers
# for a session's temp tables: each pass over it (COPY, the edge rules, the merge) wrote pages
# out and read them back. 64 MB keeps a stage in memory (50,000 Taobao orders in 5,000-order
# loads: 22,000 -> 24,200 rows/s); the buffers are taken as used, not up front.
STAGE_TEMP_BUFFERS = "64MB"
_TEMP_BUFFERS_SET = f"set temp_buffers = '{STAGE_TEMP_BUFFERS}'"


def size_temp_buffers(conn: psycopg.Connection, stage: str) -> None:
    """Before a session's first stage: room for it in memory. PostgreSQL refuses the change
    once the session has used any temp table; the size it has then stays."""
    if conn.execute("select to_regclass(%s)", [f"pg_temp.{stage}"]).fetchone()[0] is not None:
        return
    try:
        with conn.transaction():  # a savepoint: the refusal must not end the load's transaction
            conn.execute(_TEMP_BUFFERS_SET)
    except psycopg.errors.InvalidParameterValue:
        pass


# The stage holds one row per order (de-duplicated before COPY), so the merge is one pass.
_MERGE = """
with upserted as (
    insert into {table} as t
        (channel, platform_order_no, source_modified_at, payload, content_hash, loaded_at, run_id)
    select %(channel)s, platform_order_no, source_modified_at, payload, content_hash,
           now(), %(run_id)s
    from _raw_stage
    on conflict (channel, platform_order_no) do update
        set source_modified_at = excluded.source_modified_at,
            payload = excluded.payload,
            content_hash = excluded.content_hash,
            loaded_at = excluded.loaded_at,
            run_id = excluded.run_id
        where excluded.source_modified_at > t.source_modified_at
           or (excluded.source_modified_at = t.source_modified_at
               and excluded.content_hash <> t.content_hash)
           -- a version stored with a future time (before the edge rules) must not freeze it
           or t.source_modified_at > %(latest)s
    returning (xmax = 0) as inserted
)
select count(*) filter (where inserted), count(*) filter (where not inserted)
from upserted
"""

_CURSOR = """
insert into raw.ingest_cursors (source, cursor_value, detail, run_id, updated_at)
values (%s, %s, %s, %s, now())
on conflict (source) do update
    set cursor_value = greatest(raw.ingest_cursors.cursor_value, excluded.cursor_value),
        detail = excluded.detail, run_id = excluded.run_id, updated_at = now()
"""


def load_orders(
    conn: psycopg.Connection,
    channel: str,
    orders: Iterable[RawOrder],
    *,
    run_id: str | None = None,
    cursor: CursorUpdate | None = None,
    now: datetime | None = None,
    file: str | None = None,
) -> LoadStats:
    """Upsert `orders` into `raw.<channel>_orders` (and move `cursor`) in one transaction.
    Orders breaking an edge rule (judged against `now`, the wall clock by default) go to
    `raw.rejected_rows` (with `file`, when they came from one) instead."""
    table = orders_table(channel)
    stats = LoadStats()
    latest = _latest_versions(orders, stats)
    refused: list[tuple[str, str, str]] = []
    with conn.transaction(), conn.cursor() as cur:
        size_temp_buffers(conn, "_raw_stage")
        cur.execute(_STAGE)
        cur.execute("truncate _raw_stage")
        with cur.copy(
            "copy _raw_stage (platform_order_no, source_modified_at, payload, content_hash)"
            " from stdin"
        ) as copy:
            for order in latest:
                text = canonical_json(order.payload)
                if len(text) > LIMITS.max_payload:
                    why = f"payload has {len(text)} characters (at most {LIMITS.max_payload})"
                    refused.append((order.platform_order_no, text[:2000], why))
                    continue
                copy.write_row(
                    (order.platform_order_no, order.modified_at, text, content_hash(text))
                )
        if latest:
            stats.rejected = len(refused) + reject_invalid_staged(
                cur, channel, now=now, run_id=run_id, file=file
            )
            reject_rows(cur, channel, refused, run_id=run_id, file=file)
            ahead = (now or datetime.now(UTC)) + LIMITS.future_skew
            cur.execute(
                _MERGE.format(table=table),
                {"channel": channel, "run_id": run_id, "latest": ahead},
            )
            inserted, updated = cur.fetchone()
            stats.inserted, stats.updated = inserted, updated
            stats.unchanged = len(latest) - stats.rejected - inserted - updated
        if cursor is not None:
            # a cursor in the future (a source row dated 2099) would hide every later change
            value = _not_future(cursor.value, now)
            cur.execute(
                _CURSOR, (cursor.source, value, json.dumps(cursor.detail, default=str), run_id)
            )
    return stats


def _not_future(value: datetime, now: datetime | None) -> datetime:
    if value.tzinfo is None:
        return value
    return min(value, now or datetime.now(UTC))  # rows between now and the skew come again


def canonical_json(payload: dict[str, Any]) -> str:
    """The payload as compact JSON with sorted keys: equal payloads give equal text (and hash)."""
    try:
        return orjson.dumps(payload, option=_JSON_OPTIONS, default=str).decode()
    except orjson.JSONEncodeError:
        # an integer beyond 64 bits: stdlib JSON keeps it, so the edge rules can name it
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str,
                          ensure_ascii=False)  # fmt: skip


def content_hash(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _latest_versions(orders: Iterable[RawOrder], stats: LoadStats) -> list[RawOrder]:
    """One row per order: the newest version (the last one seen on a tie), as the merge needs."""
    latest: dict[str, RawOrder] = {}
    for order in orders:
        stats.received += 1
        seen = latest.get(order.platform_order_no)
        if seen is None or order.modified_at >= seen.modified_at:
            latest[order.platform_order_no] = order
    return list(latest.values())


def read_cursor(conn: psycopg.Connection, source: str) -> datetime | None:
    row = conn.execute(
        "select cursor_value from raw.ingest_cursors where source = %s", [source]
    ).fetchone()
    return row[0] if row else None
