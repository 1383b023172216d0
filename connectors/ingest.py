"""Incremental ingestion of one marketplace channel into `raw.<channel>_orders`.

Windows run from the committed cursor minus `lag` (a `>=` overlap: orders sharing the cursor's
timestamp or modified while the previous run paged are pulled again; the loader de-duplicates) up
to `now`, each no longer than the platform allows. Pages stream through in loads of about
`batch_rows` orders (never a whole backfill in memory); the cursor moves to a window's end in the
same transaction as the window's last page, so a crash resumes at the last committed window with
neither a gap nor a duplicate row.

`python -m connectors.ingest CHANNEL --sandbox-file FILE [--days N]` runs one pull into the
warehouse named by the environment variable ORDERPULSE_WAREHOUSE_URL (never an argument: a
process's command line, password included, is visible to every user of the machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from connectors.marketplace import MarketplaceClient, windows
from connectors.raw_loader import CursorUpdate, LoadStats, RawOrder, load_orders, read_cursor

log = logging.getLogger(__name__)
WAREHOUSE_URL_ENV = "ORDERPULSE_WAREHOUSE_URL"
BATCH_ROWS = 5000  # orders per load: COPY + merge have a fixed cost worth spreading
FLUSH_SECONDS = 2.0  # ...but commit at a window boundary at least this often


@dataclass
class IngestProgress:
    """Passed to `on_progress` after every window."""

    channel: str
    window: int
    windows: int
    start: datetime
    end: datetime
    pages: int
    fetched: int

    def __str__(self) -> str:
        return (
            f"window {self.window}/{self.windows} "
            f"[{self.start.isoformat()}..{self.end.isoformat()}] done: "
            f"{self.pages} pages, {self.fetched} orders so far"
        )


@dataclass
class IngestReport:
    channel: str
    source: str
    run_id: str | None = None
    windows: int = 0
    pages: int = 0
    retries: int = 0
    refreshes: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    first_window_start: datetime | None = None
    last_window_end: datetime | None = None
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)

    def add(self, stats: LoadStats) -> None:
        self.fetched += stats.received
        self.inserted += stats.inserted
        self.updated += stats.updated
        self.unchanged += stats.unchanged
        self.rejected += stats.rejected

    def as_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values (Dagster metadata accepts them as-is)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "channel": self.channel,
            "windows": self.windows,
            "pages": self.pages,
            "retries": self.retries,
            "token_refreshes": self.refreshes,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "first_window_start": iso(self.first_window_start),
            "last_window_end": iso(self.last_window_end),
            "cursor_before": iso(self.cursor_before),
            "cursor_after": iso(self.cursor_after),
            "seconds": round(self.seconds, 3),
        }


ProgressFn = Callable[[IngestProgress], None]


def ingest_channel(
    conn: psycopg.Connection,
    client: MarketplaceClient,
    *,
    source: str | None = None,
    now: datetime | None = None,
    lag: timedelta = timedelta(minutes=5),
    backfill_days: int = 3,
    start: datetime | None = None,
    end: datetime | None = None,
    run_id: str | None = None,
    on_progress: ProgressFn | None = None,
    batch_rows: int = BATCH_ROWS,
) -> IngestReport:
    """Pull `client.channel` from its cursor (or `backfill_days` back on the first run) to now.

    `conn` should be idle (autocommit or no open transaction) so every page commits on its own.
    `start`/`end` override the planned range; the cursor still only moves forward, and only
    while the loaded windows are contiguous with it.
    """
    source = source or client.channel
    now = now or datetime.now(UTC)
    with conn.transaction():
        cursor = read_cursor(conn, source)
    settle = getattr(client, "settle", timedelta(0))
    if end is None:
        end = now - settle
    if start is None:
        start = cursor - lag if cursor else now - timedelta(days=backfill_days)
    return _walk(conn, client, source, start, end, cursor, run_id, on_progress, batch_rows)


def backfill(
    conn: psycopg.Connection,
    client: MarketplaceClient,
    days: int,
    *,
    source: str | None = None,
    now: datetime | None = None,
    run_id: str | None = None,
    on_progress: ProgressFn | None = None,
) -> IngestReport:
    """Walk the last `days` days regardless of the cursor (re-loads are no-ops)."""
    now = now or datetime.now(UTC)
    return ingest_channel(
        conn,
        client,
        source=source,
        now=now,
        start=now - timedelta(days=days),
        run_id=run_id,
        on_progress=on_progress,
    )


def _walk(
    conn: psycopg.Connection,
    client: MarketplaceClient,
    source: str,
    start: datetime,
    end: datetime,
    cursor: datetime | None,
    run_id: str | None,
    on_progress: ProgressFn | None,
    batch_rows: int,
) -> IngestReport:
    report = IngestReport(channel=client.channel, source=source, run_id=run_id)
    report.cursor_before = report.cursor_after = cursor
    http = getattr(client, "http", None)
    before = http.stats(client.channel).as_dict() if http is not None else {}
    began = time.monotonic()
    batch = _Batch(conn, client.channel, run_id, report, batch_rows)
    plan = list(windows(start, end, client.max_window))
    for number, (w_start, w_end) in enumerate(plan, 1):
        for page in client.fetch_window(w_start, w_end):
            report.pages += 1
            batch.add(page)
        # moving the cursor past a gap would hide the gap forever
        if report.cursor_after is None or w_start <= report.cursor_after:
            batch.window_done(CursorUpdate(source, w_end, {"window_start": w_start.isoformat()}))
            report.cursor_after = max(report.cursor_after or w_end, w_end)
        else:
            batch.window_done(None)
        report.windows += 1
        report.first_window_start = report.first_window_start or w_start
        report.last_window_end = w_end
        if on_progress is not None:
            progress = IngestProgress(
                client.channel, number, len(plan), w_start, w_end, report.pages, report.fetched
            )
            on_progress(progress)
    batch.flush()
    if http is not None:
        after = http.stats(client.channel).as_dict()
        report.calls = {k: after[k] - before.get(k, 0) for k in after}
        report.retries = report.calls["retries"]
        report.refreshes = report.calls["refreshes"]
    report.seconds = time.monotonic() - began
    log.info("%s: ingested %s", client.channel, report.as_metadata())
    return report


class _Batch:
    """Pages gathered into loads of about `rows` orders (one COPY + merge each). The cursor of
    the last finished window rides along with the load that holds (or follows) its last page,
    so it never gets ahead of the rows it covers. A window boundary also commits when the last
    commit is `seconds` old, so a crash loses little work on slow channels."""

    def __init__(
        self,
        conn: psycopg.Connection,
        channel: str,
        run_id: str | None,
        report: IngestReport,
        rows: int,
        seconds: float = FLUSH_SECONDS,
    ):
        self.conn, self.channel, self.run_id, self.report = conn, channel, run_id, report
        self.limit, self.seconds = rows, seconds
        self.rows: list[RawOrder] = []
        self.cursor: CursorUpdate | None = None
        self.flushed_at = time.monotonic()

    def add(self, page: list[RawOrder]) -> None:
        self.rows.extend(page)
        if len(self.rows) >= self.limit:
            self.flush()

    def window_done(self, cursor: CursorUpdate | None) -> None:
        if cursor is not None:
            self.cursor = cursor
        if time.monotonic() - self.flushed_at >= self.seconds:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        if not self.rows and self.cursor is None:
            return
        stats = load_orders(
            self.conn, self.channel, self.rows, run_id=self.run_id, cursor=self.cursor
        )
        self.report.add(stats)
        self.rows, self.cursor = [], None


# -- command line (used by the crash-resume test and for manual pulls) ---------------------------


def main(argv: list[str] | None = None) -> int:
    from connectors.credentials import load_credentials
    from connectors.http import RetryPolicy, make_http_client
    from connectors.marketplace import build_client
    from connectors.raw_schema import ensure_raw_tables

    parser = argparse.ArgumentParser(prog="python -m connectors.ingest", description=__doc__)
    parser.add_argument("channel")
    parser.add_argument("--sandbox-file", type=Path, default=None)
    parser.add_argument("--days", type=int, default=3, help="first-run backfill depth")
    parser.add_argument("--lag-minutes", type=float, default=5.0)
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--attempts", type=int, default=8)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=None,
        help="override how far behind the platform's clock windows end (its advice by default)",
    )
    parser.add_argument("--fast-retries", action="store_true", help="short backoff (tests)")
    args = parser.parse_args(argv)
    db_url = os.environ.get(WAREHOUSE_URL_ENV)
    if not db_url:
        parser.error(f"set {WAREHOUSE_URL_ENV} to the warehouse URL (postgresql://...)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    policy = (
        RetryPolicy(attempts=args.attempts, initial_wait=0.01, max_wait=0.2, jitter=0.02)
        if args.fast_retries
        else RetryPolicy(attempts=args.attempts)
    )
    creds = load_credentials(args.channel, args.sandbox_file)
    try:
        with (
            make_http_client(args.timeout, policy=policy) as http,
            psycopg.connect(db_url) as conn,
        ):
            ensure_raw_tables(conn, [args.channel])
            client = build_client(args.channel, creds, http, page_size=args.page_size)
            if args.settle_seconds is not None:
                client.settle = timedelta(seconds=args.settle_seconds)
            report = ingest_channel(
                conn,
                client,
                lag=timedelta(minutes=args.lag_minutes),
                backfill_days=args.days,
                run_id=f"cli-{uuid.uuid4().hex[:8]}",
                batch_rows=args.batch_rows,
                on_progress=lambda p: print(f"{args.channel}: {p}", flush=True),
            )
    except psycopg.OperationalError as err:
        # a restarted or unreachable server: what was committed stays, the next run resumes
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(
            f"{args.channel}: the warehouse connection was lost ({type(err).__name__}: "
            f"{reason}); windows committed before it are kept, run again to resume from "
            "the cursor",
            file=sys.stderr,
            flush=True,
        )
        return 1
    print(report.as_metadata(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
