"""Nightly reconciliation: re-pull the last N hours of a channel, load what comes back, and
record how many orders the incremental pulls had missed (absent from raw, or older there than on
the platform). The figure should be zero; a non-zero one is what an alert watches.

Each run is stored in `raw.reconciliation_runs`.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from connectors.marketplace import MarketplaceClient, windows
from connectors.raw_loader import load_orders

log = logging.getLogger(__name__)

DDL = """
create table if not exists raw.reconciliation_runs (
    id             bigserial primary key,
    channel        text        not null,
    run_id         text,
    window_start   timestamptz not null,
    window_end     timestamptz not null,
    pages          integer     not null,
    fetched        integer     not null,
    missing        integer     not null,
    stale          integer     not null,
    unchanged      integer     not null,
    missed_sample  text[]      not null default '{}',
    retries        integer     not null default 0,
    started_at     timestamptz not null,
    finished_at    timestamptz not null default now()
);
create index if not exists reconciliation_runs_channel
    on raw.reconciliation_runs (channel, started_at);
"""

SAMPLE = 50  # order numbers kept per run, enough to start an investigation


@dataclass
class ReconcileReport:
    channel: str
    window_start: datetime
    window_end: datetime
    run_id: str | None = None
    pages: int = 0
    fetched: int = 0  # distinct orders the platform returned
    missing: int = 0  # not in raw at all before this run
    stale: int = 0  # in raw, but an older (or different) version
    unchanged: int = 0
    retries: int = 0
    missed_sample: list[str] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.missing + self.stale

    def as_metadata(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "pages": self.pages,
            "fetched": self.fetched,
            "missing": self.missing,
            "stale": self.stale,
            "missed": self.missed,
            "retries": self.retries,
            "missed_sample": self.missed_sample,
        }


def ensure_reconciliation_table(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('orderpulse.reconciliation_runs'))")
        conn.execute(DDL)


_BEFORE = """
select s.no, r.source_modified_at, r.content_hash
from unnest(%s::text[]) as s(no)
left join {table} r on r.channel = %s and r.platform_order_no = s.no
"""


def reconcile_channel(
    conn: psycopg.Connection,
    client: MarketplaceClient,
    hours: int = 24,
    now: datetime | None = None,
    *,
    run_id: str | None = None,
) -> ReconcileReport:
    """Re-pull the last `hours` of `client.channel` into raw and record what had been missed."""
    from connectors.raw_schema import ensure_raw_tables, orders_table

    now = now or datetime.now(UTC)
    run_id = run_id or f"reconcile-{uuid.uuid4().hex[:8]}"
    end = now - getattr(client, "settle", timedelta(0))
    report = ReconcileReport(client.channel, now - timedelta(hours=hours), end, run_id)
    ensure_raw_tables(conn, [client.channel])
    ensure_reconciliation_table(conn)
    table = orders_table(client.channel)
    http = getattr(client, "http", None)
    retries_before = http.stats(client.channel).retries if http is not None else 0
    seen: set[str] = set()
    for w_start, w_end in windows(report.window_start, end, client.max_window):
        for page in client.fetch_window(w_start, w_end):
            report.pages += 1
            fresh = {}
            for order in page:  # the newest version of each order on this page
                if order.platform_order_no not in seen:
                    known = fresh.get(order.platform_order_no)
                    if known is None or order.modified_at >= known.modified_at:
                        fresh[order.platform_order_no] = order
            if not fresh:
                continue
            with conn.transaction():
                # what raw held before this page is loaded, in the load's own transaction
                before = conn.execute(
                    _BEFORE.format(table=table), [list(fresh), client.channel]
                ).fetchall()
                stats = load_orders(conn, client.channel, fresh.values(), run_id=run_id)
            for no, modified_at, _hash in before:
                if modified_at is None:
                    report.missing += 1
                    _sample(report, no)
                elif modified_at < fresh[no].modified_at:
                    report.stale += 1
                    _sample(report, no)
            report.unchanged += stats.unchanged
            seen.update(fresh)
    report.fetched = len(seen)
    if http is not None:
        report.retries = http.stats(client.channel).retries - retries_before
    _store(conn, report, now)
    if report.missed:
        log.warning("%s: reconciliation found %d missed orders", client.channel, report.missed)
    return report


def _sample(report: ReconcileReport, order_no: str) -> None:
    if len(report.missed_sample) < SAMPLE:
        report.missed_sample.append(order_no)


def _store(conn: psycopg.Connection, report: ReconcileReport, started: datetime) -> None:
    with conn.transaction():
        conn.execute(
            """
            insert into raw.reconciliation_runs (channel, run_id, window_start, window_end, pages,
                fetched, missing, stale, unchanged, missed_sample, retries, started_at)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                report.channel,
                report.run_id,
                report.window_start,
                report.window_end,
                report.pages,
                report.fetched,
                report.missing,
                report.stale,
                report.unchanged,
                report.missed_sample,
                report.retries,
                started,
            ],
        )


def last_runs(conn: psycopg.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest reconciliation runs, newest first (for alert rules and the CLI)."""
    rows = conn.execute(
        "select channel, run_id, window_start, window_end, fetched, missing, stale, missed_sample,"
        " started_at from raw.reconciliation_runs order by id desc limit %s",
        [limit],
    ).fetchall()
    keys = ("channel", "run_id", "window_start", "window_end", "fetched", "missing", "stale",
            "missed_sample", "started_at")  # fmt: skip
    return [json.loads(json.dumps(dict(zip(keys, row, strict=True)), default=str)) for row in rows]
