"""The merchant systems (the merchant's own WMS, carriers, CS desk, storefront behaviour log and
SKU catalogue) pulled from their HTTP API into `raw`.

Endpoint and token: env `ORDERPULSE_MERCHANT_SYSTEMS_BASE_URL` /
`ORDERPULSE_MERCHANT_SYSTEMS_TOKEN`, else the `"merchant_systems": {"base_url", "token"}` entry
of `<ORDERPULSE_HOME>/sandbox.json` (`merchant_systems_endpoint()`). The token goes in
`Authorization: Bearer …` and is never logged, raised or stored.

`ingest_merchant_systems(conn, base_url, token, run_id=None)` reads every source page by page
(`limit`, `next_cursor`), the time-ordered ones incrementally from their cursor in
`raw.ingest_cursors` (source `merchant_systems.<table>`; re-read from `cursor - LOOKBACK`, rows at the boundary come again and
the upsert absorbs them). Each page's JSON text goes as it came through psycopg `COPY` into a
temp table (one row per page: no Python per record), then one statement unpacks and checks the
records and an `INSERT … ON CONFLICT DO UPDATE` applies them only where the content changed and
the source time did not go back; the next pages are fetched while it runs; the cursor moves in the same transaction, one transaction per batch of
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
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
from connectors.transport import Response

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
BATCH_ROWS = 10_000  # rows per transaction (COPY + merge + cursor); one merges while more arrive
LOOKBACK = timedelta(minutes=10)
# a pull that wrote at least this many rows refreshes the table's planner statistics: the
# checks that read "the rows this run wrote" were planned for 1 row and took minutes on 22,000
ANALYZE_ROWS = 1_000
# ... of the columns that find those rows, on a small sample: the run's id is then a common
# value of `run_id`; the default sample (30,000 random pages of the 2 GB behaviour log at
# 1,000,000 orders) took 2 s warm and 46 s cold in every 10,000-order cycle
ANALYZE_TARGET = 10
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


def _parsed(response: Response, model: type[M], what: str) -> M:
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
@dataclass(frozen=True)
class _Page:
    """One answer of a list endpoint: its JSON text as received (staged as is) and what paging
    needs from it."""

    text: str
    count: int
    next_cursor: str | None


def _page(response: Response) -> _Page:
    """A list endpoint's answer: transport errors and 5xx raise retryable, another status a
    platform error, a body that is not a page a server error. The records are not looked at
    here: PostgreSQL checks them with the whole batch (`_merge_sql`)."""
    raise_for_transport(response)
    if response.status_code != 200:
        body = json_body(response)
        raise PlatformError(
            f"http-{response.status_code}", str(body.get("message") or body.get("error"))
        )
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ServerError("http-200", "answer is not JSON") from None
    items = body.get("items") if isinstance(body, dict) else None
    cursor = body.get("next_cursor") if isinstance(body, dict) else None
    if not isinstance(items, list) or not isinstance(cursor, str | None):
        raise ServerError("bad-response", "not a page: no items list or a bad next_cursor")
    return _Page(response.text, len(items), cursor or None)


def _pages(
    http: Http, base_url: str, token: SecretStr, source: MerchantSource, since: datetime | None
) -> Iterator[_Page]:
    params: dict[str, str] = {"limit": str(PAGE_SIZE)}
    if since is not None:
        params["since"] = since.isoformat()
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
    url = f"{base_url}{source.path}"

    def get(query: dict[str, str]) -> _Page:
        return _page(http.client.get(url, params=query, headers=headers))

    while True:
        page = http.call(
            lambda q=dict(params): get(q), channel="merchant_systems", what=f"GET {source.path}"
        )
        yield page
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

# a time must end in an offset: a time without one is rejected, not guessed
_OFFSET = r"([+-]\d{2}(:?\d{2})?|Z)$"


def _reason_sql(source: MerchantSource) -> str:
    """SQL: why the staged record `payload` is rejected (null when it is kept)."""
    cases = ["when jsonb_typeof(payload) <> 'object' then 'not a JSON object'"]
    for key in source.keys:
        cases.append(
            f"when coalesce(payload ->> '{key}', '') = '' then 'missing key field ''{key}'''"
        )
    if source.time_field is not None:
        field = source.time_field
        text = f"(payload ->> '{field}')"
        cases.append(
            f"when {text} is null or {text} !~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}'"
            f" or not pg_input_is_valid({text}, 'timestamptz')"
            f" then format('{field}=%%s is not an ISO 8601 time',"
            f" coalesce(quote_literal({text}), 'None'))"
        )
        cases.append(
            f"when {text} !~ '{_OFFSET}'"
            f" then format('{field}=%%s has no UTC offset', quote_literal({text}))"
        )
    return "case " + " ".join(cases) + " end"


def _merge_sql(source: MerchantSource) -> str:
    """One statement over the staged pages: every record checked (rejects recorded), the newest
    version of each key upserted where its content changed and its time did not go back.
    Returns (inserted, updated, rejected, newest source time kept)."""
    keys = ", ".join(source.keys)
    key_columns = ", ".join(f"payload ->> '{k}' as {k}" for k in source.keys)
    if source.time_field is None:
        modified = "%(loaded)s::timestamptz"
    else:  # only rows whose reason is null reach the cast; the guard keeps the plan safe
        text = f"(payload ->> '{source.time_field}')"
        modified = (
            f"case when pg_input_is_valid({text}, 'timestamptz') then {text}::timestamptz end"
        )
    return f"""
with records as (
    select payload
    from _merchant_stage_{source.table} as stage
    cross join lateral jsonb_array_elements(stage.page -> 'items') as payload
),

checked as (
    select payload, {_reason_sql(source)} as reason
    from records
),

kept as (
    select {key_columns}, {modified} as source_modified_at, payload
    from checked
    where reason is null
),

rejected as (
    insert into raw.rejected_rows (source, raw_text, reason, run_id)
    select %(source)s, left(payload::text, 2000), reason, %(run_id)s
    from checked
    where reason is not null
    returning 1
),

latest as (
    select distinct on ({keys})
        {keys}, source_modified_at, payload, md5(payload::text) as content_hash
    from kept
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

select
    count(*) filter (where inserted),
    count(*) filter (where not inserted),
    (select count(*) from rejected),
    (select max(source_modified_at) from kept)
from upserted
"""


@dataclass
class SourceStats:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0


def _flush(
    conn: psycopg.Connection,
    source: MerchantSource,
    pages: list[str],
    rows: int,
    loaded: datetime,
    run_id: str | None,
    stats: SourceStats,
) -> None:
    """COPY the pages' text into the stage (one row per page), check and merge their records,
    record rejects and move the cursor: one transaction, no Python per record."""
    stage = f"_merchant_stage_{source.table}"
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"create temp table if not exists {stage} (page jsonb) on commit delete rows")
        # emptied here too: inside a caller's open transaction this block is a savepoint, no
        # commit empties the stage, and every batch would merge all earlier ones again
        cur.execute(f"truncate {stage}")
        with cur.copy(f"copy {stage} (page) from stdin") as copy:
            for text in pages:
                copy.write_row((text,))
        params = {"run_id": run_id, "source": source.cursor_name, "loaded": loaded}
        cur.execute(_merge_sql(source), params)
        inserted, updated, rejected, newest = cur.fetchone()
        stats.inserted += inserted
        stats.updated += updated
        stats.rejected += rejected
        if source.incremental and newest is not None:
            detail = json.dumps({"rows": rows})
            cur.execute(_CURSOR_SQL, (source.cursor_name, newest, detail, run_id))


def _read_cursor(conn: psycopg.Connection, name: str) -> datetime | None:
    # in a transaction block of its own: a bare execute would leave one open on a
    # non-autocommit connection, turning every later batch into a savepoint of it
    with conn.transaction():
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
    pages: list[str] = []
    staged = 0
    # the next pages are fetched while PostgreSQL merges the previous batch (one batch in
    # flight, so batches and their cursor moves commit in page order)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="merchant-flush") as flusher:
        pending: Future | None = None
        for page in _pages(http, base_url, token, source, since):
            stats.received += page.count
            if page.count:
                pages.append(page.text)
                staged += page.count
            if staged >= BATCH_ROWS:
                if pending is not None:
                    pending.result()
                pending = flusher.submit(_flush, conn, source, pages, staged, loaded, run_id, stats)
                pages, staged = [], 0
        if pending is not None:
            pending.result()
        if pages:
            _flush(conn, source, pages, staged, loaded, run_id, stats)
    if stats.inserted + stats.updated >= ANALYZE_ROWS:
        with conn.transaction():
            conn.execute(f"set local default_statistics_target = {ANALYZE_TARGET}")
            conn.execute(f"analyze raw.{source.table} (run_id, loaded_at)")
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
