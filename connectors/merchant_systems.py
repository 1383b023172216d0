"""The merchant systems (the merchant's own WMS, carriers, CS desk, storefront behaviour log and
SKU catalogue) pulled from their HTTP API into `raw`.

Endpoint and token: env `ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL` /
`ORDERPULSE_MERCHANT_SYSTEMS_TOKEN`, else the `"merchant_systems": {"base_url", "token"}` entry
of `<ORDERPULSE_HOME>/sandbox.json` (`merchant_systems_endpoint()`). The token goes in
`Authorization: Bearer …` and is never logged, raised or stored.

`ingest_merchant_systems(conn, base_url, token, run_id=None)` reads every source page by page
(`limit`, `next_cursor`), the time-ordered ones incrementally from their cursor in
`raw.ingest_cursors` (source `merchant_systems.<table>`; re-read from `cursor - LOOKBACK`, rows at the boundary come again and
the upsert absorbs them). Pages stream through psycopg `COPY` into a temp table, then one
`INSERT … ON CONFLICT DO UPDATE` applies them only where the content changed and the source
time did not go back; the cursor moves in the same transaction, one transaction per batch of
pages. Re-running is a no-op. A record without its key or time field goes to
`raw.rejected_rows` (source `merchant_systems.<table>`) instead of stopping the load.

Tables (all: the key column(s), `source_modified_at timestamptz`, `payload jsonb`,
`content_hash text`, `loaded_at timestamptz`, `run_id text`; primary key = the key columns):

| table | key | source_modified_at | payload keys |
|---|---|---|---|
| raw.warehouses | warehouse_id | load time | warehouse_id, name, province, city, district, latitude, longitude, is_front, region |
| raw.skus | sku | load time | sku, title, category, price (yuan string), weight_kg, hs_code, barcode, is_hot |
| raw.wms_stock | warehouse_id, sku | last_sync_at | warehouse_id, sku, on_hand, locked, available, safety_stock, last_sync_at |
| raw.wms_events | event_id | at | event_id, at, warehouse_id, channel, platform_order_no, type (allocate, allocate_failed, pick, pack, ship, return_received), operator, detail |
| raw.stock_movements | movement_id | at | movement_id, at, warehouse_id, sku, kind (inbound, adjust, lock, release, ship, return), qty (signed), channel, platform_order_no |
| raw.carrier_shipments | tracking_no | updated_at | channel, platform_order_no, warehouse_id, carrier, tracking_no, shipped_at, promised_at, delivered_at, status, updated_at |
| raw.carrier_tracks | event_id | at | event_id, at, carrier, tracking_no, channel, platform_order_no, status (created, picked_up, pickup_failed, in_transit, out_for_delivery, delivered, rejected, returning), location, description |
| raw.cs_tickets | ticket_id | updated_at | ticket_id, channel, platform_order_no, buyer_id, opened_at, updated_at, topic, text, status (open, pending, resolved), priority (low, normal, high) |
| raw.behaviour_events | event_id | at | event_id, at, buyer_id, ip, device, action (view, cart_add, cart_remove, submit_order, pay), channel, sku, platform_order_no |

Times in payloads are ISO 8601 strings with an offset; amounts are yuan decimal strings.
"""  # noqa: E501

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from pydantic import BaseModel, SecretStr, ValidationError

from connectors.credentials import CredentialsError, lookup_credentials, reveal
from connectors.http import (
    Http,
    PlatformError,
    ServerError,
    json_body,
    make_http_client,
    raise_for_transport,
    register_secret,
    require_tls,
)
from connectors.raw_schema import BOOKKEEPING_DDL

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
BATCH_ROWS = 20_000  # rows per transaction (COPY + merge + cursor)
LOOKBACK = timedelta(minutes=10)
# raw.ingest_cursors / raw.rejected_rows source of a table; was `ops.` (migrated on ensure)
CURSOR_PREFIX = "merchant_systems."


@dataclass(frozen=True)
class MerchantSource:
    table: str  # raw.<table>
    path: str
    keys: tuple[str, ...]
    time_field: str | None  # payload field that is source_modified_at; None = load time
    incremental: bool  # read from the cursor with `since`

    @property
    def cursor_name(self) -> str:
        return f"{CURSOR_PREFIX}{self.table}"


SOURCES = (
    MerchantSource("warehouses", "/wms/warehouses", ("warehouse_id",), None, False),
    MerchantSource("skus", "/catalog/skus", ("sku",), None, False),
    MerchantSource("wms_stock", "/wms/stock", ("warehouse_id", "sku"), "last_sync_at", False),
    MerchantSource("wms_events", "/wms/events", ("event_id",), "at", True),
    MerchantSource("stock_movements", "/wms/movements", ("movement_id",), "at", True),
    MerchantSource(
        "carrier_shipments", "/carriers/shipments", ("tracking_no",), "updated_at", True
    ),
    MerchantSource("carrier_tracks", "/carriers/tracks", ("event_id",), "at", True),
    MerchantSource("cs_tickets", "/cs/tickets", ("ticket_id",), "updated_at", True),
    MerchantSource("behaviour_events", "/behaviour/events", ("event_id",), "at", True),
)


M = TypeVar("M", bound=BaseModel)


def _parsed(response: httpx.Response, model: type[M], what: str) -> M:
    """The merchant systems' JSON answer as `model`: transport errors and 5xx raise retryable,
    another status a platform error, a body that is not `what` a server error."""
    raise_for_transport(response)
    body = json_body(response)
    if response.status_code != 200:
        raise PlatformError(
            f"http-{response.status_code}", str(body.get("message") or body.get("error"))
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ServerError("bad-response", f"not {what}: {exc.errors()[0]['msg']}") from None


def merchant_systems_endpoint(
    sandbox_file: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> tuple[str, SecretStr]:
    """(base_url, token) from ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL / _TOKEN, else the
    sandbox.json `merchant_systems` entry (`CredentialsError` naming the env vars otherwise)."""
    try:
        found = lookup_credentials(
            "merchant_systems",
            ("base_url", "token"),
            secret=("token",),
            sandbox_file=sandbox_file,
            sandbox_entry=("merchant_systems",),
            environ=environ,
        )
    except CredentialsError as err:
        legacy = [n for n in _RENAMED_ENV if n in (os.environ if environ is None else environ)]
        if not legacy:
            raise
        raise CredentialsError(
            f"{err} ({', '.join(legacy)}: renamed to ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL "
            "and ORDERPULSE_MERCHANT_SYSTEMS_TOKEN)"
        ) from None
    base_url = require_tls(
        reveal(found["base_url"]).rstrip("/"),
        what="merchant systems base_url",
        fix="set ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL to the systems' https:// address",
    )
    return base_url, SecretStr(reveal(found["token"]))


# names before the merchant's systems got their own name (ops is the decision schema)
_RENAMED_ENV = ("ORDERPULSE_OPS_BASE_URL", "ORDERPULSE_OPS_TOKEN")


# -- DDL ------------------------------------------------------------------------------------
def _ddl(source: MerchantSource) -> str:
    keys = ",\n    ".join(f"{k} text not null" for k in source.keys)
    return f"""
create table if not exists raw.{source.table} (
    {keys},
    source_modified_at timestamptz not null,
    payload            jsonb       not null,
    content_hash       text        not null,
    loaded_at          timestamptz not null default now(),
    run_id             text,
    primary key ({", ".join(source.keys)})
);
create index if not exists {source.table}_loaded_at on raw.{source.table} (loaded_at);
create index if not exists {source.table}_modified on raw.{source.table} (source_modified_at);
"""


# cursors and rejects recorded under the old `ops.<table>` names keep counting (idempotent)
_RENAME_OLD_PREFIX = (
    """update raw.ingest_cursors c set source = %(new)s || substr(c.source, 5)
    where c.source = any(%(old)s) and not exists
        (select 1 from raw.ingest_cursors n where n.source = %(new)s || substr(c.source, 5))""",
    "update raw.rejected_rows set source = %(new)s || substr(source, 5)"
    " where source = any(%(old)s)",
)


def ensure_merchant_systems_tables(conn: psycopg.Connection) -> None:
    """Create the merchant systems' raw tables and the bookkeeping tables (idempotent)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.raw_schema'))")
        conn.execute(BOOKKEEPING_DDL.format())
        for source in SOURCES:
            conn.execute(_ddl(source))
        old = [f"ops.{s.table}" for s in SOURCES]
        for statement in _RENAME_OLD_PREFIX:
            conn.execute(statement, {"new": CURSOR_PREFIX, "old": old})


# -- reading the API ----------------------------------------------------------------------
class _Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None
    has_more: bool = False


def _pages(
    http: Http, base_url: str, token: SecretStr, source: MerchantSource, since: datetime | None
) -> Iterator[list[dict[str, Any]]]:
    params: dict[str, str] = {"limit": str(PAGE_SIZE)}
    if since is not None:
        params["since"] = since.isoformat()
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
    url = f"{base_url}{source.path}"

    def get(query: dict[str, str]) -> _Page:
        response = http.client.get(url, params=query, headers=headers)
        return _parsed(response, _Page, "a page")

    while True:
        page = http.call(
            lambda q=dict(params): get(q), channel="merchant_systems", what=f"GET {source.path}"
        )
        yield page.items
        if not page.next_cursor:
            return
        params["cursor"] = page.next_cursor


# -- loading --------------------------------------------------------------------------------
_CURSOR_SQL = """
insert into raw.ingest_cursors (source, cursor_value, detail, run_id, updated_at)
values (%s, %s, %s, %s, now())
on conflict (source) do update
    set cursor_value = greatest(raw.ingest_cursors.cursor_value, excluded.cursor_value),
        detail = excluded.detail, run_id = excluded.run_id, updated_at = now()
"""


def _merge_sql(source: MerchantSource) -> str:
    keys = ", ".join(source.keys)
    return f"""
with latest as (
    select distinct on ({keys})
        {keys}, source_modified_at, payload, md5(payload::text) as content_hash
    from _merchant_stage_{source.table}
    order by {keys}, source_modified_at desc
),
upserted as (
    insert into raw.{source.table} as t
        ({keys}, source_modified_at, payload, content_hash, loaded_at, run_id)
    select {keys}, source_modified_at, payload, content_hash, now(), %(run_id)s
    from latest
    on conflict ({keys}) do update
        set source_modified_at = excluded.source_modified_at,
            payload = excluded.payload,
            content_hash = excluded.content_hash,
            loaded_at = excluded.loaded_at,
            run_id = excluded.run_id
        where excluded.content_hash <> t.content_hash
          and excluded.source_modified_at >= t.source_modified_at
    returning (xmax = 0) as inserted
)
select count(*) filter (where inserted), count(*) filter (where not inserted) from upserted
"""


@dataclass
class SourceStats:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0


def _row(source: MerchantSource, record: dict[str, Any], loaded: datetime) -> tuple | str:
    """The staged row of a record, or the reason it is rejected."""
    keys = []
    for k in source.keys:
        value = record.get(k)
        if value in (None, ""):
            return f"missing key field {k!r}"
        keys.append(str(value))
    when = loaded
    if source.time_field is not None:
        text = record.get(source.time_field)
        try:
            when = datetime.fromisoformat(str(text))
        except ValueError:
            return f"{source.time_field}={text!r} is not an ISO 8601 time"
        if when.tzinfo is None:
            return f"{source.time_field}={text!r} has no UTC offset"
    return (*keys, when, json.dumps(record, ensure_ascii=False, sort_keys=True))


def _flush(
    conn: psycopg.Connection,
    source: MerchantSource,
    rows: list[tuple],
    rejects: list[tuple[str, str]],
    run_id: str | None,
    stats: SourceStats,
) -> None:
    """COPY `rows` into the stage, merge them, record rejects and move the cursor: one
    transaction."""
    stage = f"_merchant_stage_{source.table}"
    cols = ", ".join(source.keys)
    with conn.transaction(), conn.cursor() as cur:
        key_ddl = ", ".join(f"{k} text" for k in source.keys)
        cur.execute(
            f"create temp table if not exists {stage} ({key_ddl}, source_modified_at timestamptz,"
            " payload jsonb) on commit delete rows"
        )
        with cur.copy(f"copy {stage} ({cols}, source_modified_at, payload) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        if rows:
            cur.execute(_merge_sql(source), {"run_id": run_id})
            inserted, updated = cur.fetchone()
            stats.inserted += inserted
            stats.updated += updated
        if rejects:
            cur.executemany(
                "insert into raw.rejected_rows (source, raw_text, reason, run_id)"
                " values (%s, %s, %s, %s)",
                [(source.cursor_name, text, reason, run_id) for text, reason in rejects],
            )
        if source.incremental and rows:
            newest = max(r[len(source.keys)] for r in rows)
            detail = json.dumps({"rows": len(rows)})
            cur.execute(_CURSOR_SQL, (source.cursor_name, newest, detail, run_id))


def _read_cursor(conn: psycopg.Connection, name: str) -> datetime | None:
    row = conn.execute(
        "select cursor_value from raw.ingest_cursors where source = %s", [name]
    ).fetchone()
    return row[0] if row else None


def ingest_source(
    conn: psycopg.Connection,
    http: Http,
    base_url: str,
    token: SecretStr,
    source: MerchantSource,
    run_id: str | None = None,
) -> SourceStats:
    """Pull one source into `raw.<source.table>` (incrementally where it is time-ordered)."""
    since = None
    if source.incremental:
        cursor = _read_cursor(conn, source.cursor_name)
        since = cursor - LOOKBACK if cursor is not None else None
    loaded = datetime.now(UTC)
    stats = SourceStats()
    rows: list[tuple] = []
    rejects: list[tuple[str, str]] = []
    for items in _pages(http, base_url, token, source, since):
        for record in items:
            row = _row(source, record, loaded)
            if isinstance(row, str):
                rejects.append((json.dumps(record, ensure_ascii=False)[:2000], row))
            else:
                rows.append(row)
        stats.received += len(items)
        if len(rows) >= BATCH_ROWS:
            _flush(conn, source, rows, rejects, run_id, stats)
            stats.rejected += len(rejects)
            rows, rejects = [], []
    if rows or rejects:
        _flush(conn, source, rows, rejects, run_id, stats)
        stats.rejected += len(rejects)
    log.info(
        "merchant systems %s: %d received, %d new, %d changed, %d rejected",
        source.table, stats.received, stats.inserted, stats.updated, stats.rejected,
    )  # fmt: skip
    return stats


def ingest_merchant_systems(
    conn: psycopg.Connection,
    base_url: str,
    token: str | SecretStr,
    run_id: str | None = None,
    *,
    http: Http | None = None,
) -> dict[str, int]:
    """Pull every merchant-systems source; returns rows received per raw table
    (e.g. {"wms_events": 812})."""
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    register_secret(secret.get_secret_value())
    ensure_merchant_systems_tables(conn)
    own = http is None
    http = http or make_http_client()
    try:
        return {
            s.table: ingest_source(conn, http, base_url.rstrip("/"), secret, s, run_id).received
            for s in SOURCES
        }
    finally:
        if own:
            http.close()


# -- sending decisions to the WMS -------------------------------------------------------------
ALLOCATION_BATCH = 500
ALLOCATION_FIELDS = (
    "channel",
    "platform_order_no",
    "warehouse_id",
    "carrier",
    "decided_at",
    "promised_delivery_at",
)


@dataclass
class AllocationReport:
    """What the WMS answered for a `send_allocations` call, summed over its batches."""

    sent: int = 0
    accepted: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] | None = None
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "rejected": list(self.rejected or []),
            "batches": self.batches,
        }


class _AllocationAnswer(BaseModel):
    accepted: int
    rejected: list[dict[str, Any]] = []
    replaced: int = 0
    unchanged: int = 0


def _wire(value: Any) -> Any:
    """JSON-ready: timestamps (datetime, pandas Timestamp) as ISO 8601 with an offset (naive =
    UTC), None/NaN/NaT as null, numpy scalars as Python values."""
    if value is None or (not isinstance(value, str) and value != value):  # NaN, NaT
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value if isinstance(value, int | float | str | bool) else str(value)


def send_allocations(
    base_url: str,
    token: str | SecretStr,
    allocations: list[dict[str, Any]],
    *,
    http: Http | None = None,
    batch_size: int = ALLOCATION_BATCH,
) -> AllocationReport:
    """POST routing decisions to the WMS (`/wms/allocations`) in batches of `batch_size`, each
    with the shared retry policy (tenacity: 429/5xx/timeouts retried with backoff). Every
    allocation carries ALLOCATION_FIELDS (extra keys are not sent). Re-sending is safe: the
    WMS treats an unchanged allocation as a no-op. Returns the summed answer; rejected rows
    (unknown order, unknown warehouse, already shipped, ...) are reported, not raised."""
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    register_secret(secret.get_secret_value())
    url = f"{base_url.rstrip('/')}/wms/allocations"
    headers = {"Authorization": f"Bearer {secret.get_secret_value()}"}
    report = AllocationReport(rejected=[])
    own = http is None
    http = http or make_http_client()

    def post(body: dict[str, Any]) -> _AllocationAnswer:
        response = http.client.post(url, json=body, headers=headers)
        return _parsed(response, _AllocationAnswer, "an answer")

    try:
        for lo in range(0, len(allocations), max(batch_size, 1)):
            chunk = [
                {f: _wire(a.get(f)) for f in ALLOCATION_FIELDS}
                for a in allocations[lo : lo + batch_size]
            ]
            answer = http.call(
                lambda b={"allocations": chunk}: post(b),
                channel="merchant_systems",
                what="POST /wms/allocations",
            )
            report.sent += len(chunk)
            report.accepted += answer.accepted
            report.replaced += answer.replaced
            report.unchanged += answer.unchanged
            report.rejected += answer.rejected
            report.batches += 1
    finally:
        if own:
            http.close()
    log.info(
        "merchant systems allocations: %d sent, %d accepted, %d rejected",
        report.sent, report.accepted, len(report.rejected or []),
    )  # fmt: skip
    return report
