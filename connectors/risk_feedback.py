"""Chargebacks and audit verdicts (the risk feedback on shipped orders) from the merchant
systems' API into `raw.risk_feedback`.

`GET /risk/feedback` (the merchant systems' base URL and bearer token,
`connectors.merchant_systems.merchant_systems_endpoint`) lists records `{feedback_id, kind,
channel, platform_order_no, reported_at, verdict, reason, amount}`: a platform's chargeback or
dispute (拒付 / 盗刷申诉; `kind` chargeback, `verdict` the claim: fraud or coupon_abuse) or the
verdict of an after-the-fact audit of a shipped order (`kind` audit, `verdict` fraud,
coupon_abuse or honest). Paged by `next_cursor`, read incrementally by `reported_at` from the
cursor `merchant_systems.risk_feedback` in `raw.ingest_cursors` less a 10-minute lookback.

Every record is checked at the edge (`FeedbackRecord`: a known kind and verdict, a chargeback
never claiming honest, the order key, a time with an offset, a non-negative amount); one that
fails goes to `raw.rejected_rows` with the reason and the rest load. The kept records stream
through COPY into a temp table and one `insert … on conflict (feedback_id) do update` applies
them where the content changed and the time did not go back; the cursor moves in the same
transaction. A re-run changes nothing.

Table `raw.risk_feedback`: feedback_id (key), channel, platform_order_no, kind, verdict,
source_modified_at (= reported_at), payload jsonb, content_hash, loaded_at, run_id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from pydantic import AwareDatetime, BaseModel, Field, SecretStr, ValidationError, model_validator

from connectors.http import (
    Http,
    PlatformError,
    ServerError,
    json_body,
    make_http_client,
    raise_for_transport,
    register_secret,
)
from connectors.raw_schema import BOOKKEEPING_DDL

__all__ = ["CURSOR", "FeedbackRecord", "FeedbackStats", "ingest_risk_feedback"]

log = logging.getLogger(__name__)

PATH = "/risk/feedback"
CURSOR = "merchant_systems.risk_feedback"
LOOKBACK = timedelta(minutes=10)
PAGE_SIZE = 1000

DDL = """
create table if not exists raw.risk_feedback (
    feedback_id        text        primary key,
    channel            text        not null,
    platform_order_no  text        not null,
    kind               text        not null,
    verdict            text        not null,
    source_modified_at timestamptz not null,
    payload            jsonb       not null,
    content_hash       text        not null,
    loaded_at          timestamptz not null default now(),
    run_id             text
);
create index if not exists risk_feedback_order on raw.risk_feedback (channel, platform_order_no);
create index if not exists risk_feedback_modified on raw.risk_feedback (source_modified_at);
"""

_STAGE = """
create temp table if not exists _risk_feedback_stage (
    feedback_id text, channel text, platform_order_no text, kind text, verdict text,
    source_modified_at timestamptz, payload jsonb
) on commit delete rows
"""

_MERGE = """
with latest as (
    select distinct on (feedback_id)
        feedback_id, channel, platform_order_no, kind, verdict, source_modified_at, payload,
        md5(payload::text) as content_hash
    from _risk_feedback_stage
    order by feedback_id, source_modified_at desc
),

upserted as (
    insert into raw.risk_feedback as t (feedback_id, channel, platform_order_no, kind, verdict,
        source_modified_at, payload, content_hash, loaded_at, run_id)
    select feedback_id, channel, platform_order_no, kind, verdict, source_modified_at, payload,
        content_hash, now(), %(run_id)s
    from latest
    on conflict (feedback_id) do update
        set channel = excluded.channel,
            platform_order_no = excluded.platform_order_no,
            kind = excluded.kind,
            verdict = excluded.verdict,
            source_modified_at = excluded.source_modified_at,
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

_CURSOR_SQL = """
insert into raw.ingest_cursors (source, cursor_value, detail, run_id, updated_at)
values (%s, %s, %s, %s, now())
on conflict (source) do update
    set cursor_value = greatest(raw.ingest_cursors.cursor_value, excluded.cursor_value),
        detail = excluded.detail, run_id = excluded.run_id, updated_at = now()
"""


class FeedbackRecord(BaseModel):
    """One record as the API must send it (extra keys are kept in the payload, not checked)."""

    feedback_id: str = Field(min_length=1)
    kind: Literal["chargeback", "audit"]
    channel: str = Field(min_length=1)
    platform_order_no: str = Field(min_length=1)
    reported_at: AwareDatetime
    verdict: Literal["fraud", "coupon_abuse", "honest"]
    reason: str | None = None
    amount: Decimal = Field(ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _claim(self) -> FeedbackRecord:
        if self.kind == "chargeback" and self.verdict == "honest":
            raise ValueError("a chargeback claims fraud or coupon_abuse, never honest")
        return self


@dataclass
class FeedbackStats:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    rejected: int = 0


def _problem(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


def _pages(http: Http, url: str, token: SecretStr, since: datetime | None):  # noqa: ANN202
    """The pages' item lists, following `next_cursor`."""
    params: dict[str, str] = {"limit": str(PAGE_SIZE)}
    if since is not None:
        params["since"] = since.isoformat()
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}

    def get(query: dict[str, str]) -> dict[str, Any]:
        response = http.client.get(url, params=query, headers=headers)
        raise_for_transport(response)
        body = json_body(response)
        if response.status_code != 200:
            raise PlatformError(
                f"http-{response.status_code}", str(body.get("message") or body.get("error"))
            )
        if not isinstance(body.get("items"), list):
            raise ServerError("bad-response", "not a page: no items list")
        return body

    while True:
        body = http.call(lambda q=dict(params): get(q), channel="merchant_systems", what=PATH)
        yield body["items"]
        if not body.get("next_cursor"):
            return
        params["cursor"] = str(body["next_cursor"])


def _flush(
    conn: psycopg.Connection,
    rows: list[tuple],
    rejects: list[tuple[str, str]],
    run_id: str | None,
    stats: FeedbackStats,
) -> None:
    """COPY, merge, record the rejects and move the cursor: one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_STAGE)
        columns = "feedback_id, channel, platform_order_no, kind, verdict, source_modified_at"
        with cur.copy(f"copy _risk_feedback_stage ({columns}, payload) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        if rows:
            cur.execute(_MERGE, {"run_id": run_id})
            inserted, updated = cur.fetchone()
            stats.inserted += inserted
            stats.updated += updated
            newest = max(r[5] for r in rows)
            cur.execute(_CURSOR_SQL, (CURSOR, newest, json.dumps({"rows": len(rows)}), run_id))
        if rejects:
            cur.executemany(
                "insert into raw.rejected_rows (source, raw_text, reason, run_id)"
                " values (%s, %s, %s, %s)",
                [(CURSOR, text, reason, run_id) for text, reason in rejects],
            )
    stats.rejected += len(rejects)


def ingest_risk_feedback(
    conn: psycopg.Connection,
    base_url: str,
    token: str | SecretStr,
    run_id: str | None = None,
    *,
    http: Http | None = None,
) -> FeedbackStats:
    """Pull the chargebacks and audit verdicts reported since the cursor into raw."""
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    register_secret(secret.get_secret_value())
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.raw_schema'))")
        conn.execute(BOOKKEEPING_DDL.format())
        conn.execute(DDL)
    row = conn.execute(
        "select cursor_value from raw.ingest_cursors where source = %s", [CURSOR]
    ).fetchone()
    since = row[0] - LOOKBACK if row else None
    stats = FeedbackStats()
    rows: list[tuple] = []
    rejects: list[tuple[str, str]] = []
    own = http is None
    http = http or make_http_client()
    try:
        for items in _pages(http, f"{base_url.rstrip('/')}{PATH}", secret, since):
            stats.received += len(items)
            for item in items:
                try:
                    r = FeedbackRecord.model_validate(item)
                except ValidationError as err:
                    rejects.append((json.dumps(item, ensure_ascii=False)[:2000], _problem(err)))
                    continue
                payload = json.dumps(item, ensure_ascii=False, sort_keys=True)
                rows.append((r.feedback_id, r.channel, r.platform_order_no, r.kind, r.verdict,
                             r.reported_at, payload))  # fmt: skip
    finally:
        if own:
            http.close()
    if rows or rejects:
        _flush(conn, rows, rejects, run_id, stats)
    log.info(
        "risk feedback: %d received, %d new, %d changed, %d rejected",
        stats.received, stats.inserted, stats.updated, stats.rejected,
    )  # fmt: skip
    return stats
