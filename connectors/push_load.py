"""The sensor side of pushes: read the stored push events, load the orders they name.

`load_pushed_orders` is the one push-load sequence, called by both the push sensor's fast path
and a push-triggered ingestion run: fetch the named orders by detail calls, upsert them into
`raw.<channel>_orders` (no cursor move: a push is not a window) and mark the events processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from connectors.http import IngestError
from connectors.marketplace import MarketplaceClient
from connectors.raw_loader import LoadStats, RawOrder, load_orders
from connectors.raw_schema import ensure_raw_tables


@dataclass
class WebhookEvent:
    id: int
    channel: str
    message_id: str
    topic: str | None
    order_nos: list[str]
    payload: dict[str, Any]
    received_at: datetime
    processed_at: datetime | None = None


@dataclass
class PushLoadReport:
    channel: str
    order_nos: int
    webhook_events: int
    stats: LoadStats
    refused: int = 0  # named orders the platform refuses for good (quarantined, not retried)


def pending_events(
    conn: psycopg.Connection, limit: int = 500, *, channel: str | None = None
) -> list[WebhookEvent]:
    """Stored, not yet processed events (of one channel, or all), oldest first."""
    rows = conn.execute(
        "select id, channel, message_id, topic, order_nos, payload, received_at, processed_at"
        " from raw.webhook_events where processed_at is null"
        " and (%(channel)s::text is null or channel = %(channel)s::text)"
        " order by id limit %(limit)s",
        {"channel": channel, "limit": limit},
    ).fetchall()
    return [WebhookEvent(*row) for row in rows]


def mark_processed(conn: psycopg.Connection, ids: Sequence[int]) -> int:
    """Mark events processed (after their orders were loaded); returns how many changed."""
    if not ids:
        return 0
    with conn.transaction():
        cur = conn.execute(
            "update raw.webhook_events set processed_at = now()"
            " where id = any(%s) and processed_at is null",
            [list(ids)],
        )
    return cur.rowcount


def fetch_orders(client: MarketplaceClient, order_nos: Sequence[str]) -> list[RawOrder]:
    """The pushed orders, fetched by detail calls, ready for `raw_loader.load_orders`."""
    return client.fetch_orders(order_nos) if order_nos else []


def _fetch_each(
    client: MarketplaceClient, order_nos: Sequence[str]
) -> tuple[list[RawOrder], list[tuple[str, str]]]:
    """One by one after a batch failed: the orders that load, and (order no, reason) of those
    the platform refuses for good (a non-retryable answer on the first attempt, e.g. an order
    that does not exist). A transient failure that outlived its retries is raised: the events
    stay pending for the next attempt."""
    orders: list[RawOrder] = []
    refused: list[tuple[str, str]] = []
    for no in dict.fromkeys(order_nos):  # only after a batch failed: a few orders
        try:
            orders.extend(client.fetch_orders([no]))
        except IngestError as exc:
            if exc.attempts > 1:
                raise
            refused.append((no, str(exc)))
    return orders, refused


def _quarantine(
    conn: psycopg.Connection, channel: str, refused: list[tuple[str, str]], run_id: str | None
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into raw.rejected_rows (source, raw_text, reason, run_id) "
            "values (%s, %s, %s, %s)",
            [(channel, no, f"pushed order refused by the platform: {why}", run_id)
             for no, why in refused],
        )  # fmt: skip


def load_pushed_orders(
    conn: psycopg.Connection,
    client: MarketplaceClient,
    channel: str,
    order_nos: Sequence[str],
    event_ids: Sequence[int] = (),
    *,
    run_id: str | None = None,
) -> PushLoadReport:
    """Fetch and upsert the orders push messages named, then mark those events processed
    (only after the orders are in: a failure leaves them pending for the next attempt)."""
    ensure_raw_tables(conn, [channel])
    refused: list[tuple[str, str]] = []
    try:
        fetched = fetch_orders(client, order_nos)
    except IngestError:
        # one bad order must not hold back the others for ever: retry them one by one
        fetched, refused = _fetch_each(client, order_nos)
    stats = load_orders(conn, channel, fetched, run_id=run_id)
    if refused:
        _quarantine(conn, channel, refused, run_id)
    mark_processed(conn, event_ids)
    conn.commit()
    return PushLoadReport(channel, len(order_nos), len(event_ids), stats, len(refused))
