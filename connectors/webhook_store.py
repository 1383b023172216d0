"""The push receiver's event store: verified messages into `raw.webhook_events`.

One async connection, serialised by a lock; one statement per request (all its messages at
once). A connection that died under it (PostgreSQL restarted, the backend killed) is replaced
and the statement retried once, so the first push after a restart is stored, not answered
500; while the server stays down the request is refused with 503 (the platform retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

import psycopg

from connectors.push_verify import Message, Rejected
from connectors.raw_schema import BOOKKEEPING_DDL

log = logging.getLogger(__name__)

_INSERT = """
insert into raw.webhook_events (channel, message_id, topic, order_nos, payload)
select
    %(channel)s,
    m.message_id,
    m.topic,
    array(select jsonb_array_elements_text(m.order_nos)),
    m.payload
from unnest(%(ids)s::text[], %(topics)s::text[], %(order_nos)s::jsonb[], %(payloads)s::jsonb[])
    as m (message_id, topic, order_nos, payload)
on conflict (channel, message_id) do nothing
returning message_id
"""


class WebhookStore:
    """Stores verified messages; a message id seen before makes the whole request a replay."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.db_url, autocommit=True, application_name="orderpulse-webhook"
            )
            await self._conn.execute("select pg_advisory_lock(hashtext('orderpulse.raw_schema'))")
            try:
                await self._conn.execute(BOOKKEEPING_DDL.format())
            finally:
                await self._conn.execute(
                    "select pg_advisory_unlock(hashtext('orderpulse.raw_schema'))"
                )
        return self._conn

    async def _insert(self, channel: str, messages: Sequence[Message]) -> None:
        conn = await self._connection()
        params = {
            "channel": channel,
            "ids": [m.message_id for m in messages],
            "topics": [m.topic for m in messages],
            "order_nos": [json.dumps(m.order_nos) for m in messages],
            "payloads": [json.dumps(m.payload, ensure_ascii=False, default=str) for m in messages],
        }
        async with conn.transaction():
            cur = await conn.execute(_INSERT, params)
            stored = {row[0] for row in await cur.fetchall()}
            if len(stored) != len(messages):
                seen = next(m.message_id for m in messages if m.message_id not in stored)
                # raising inside the transaction block rolls back what it stored
                raise Rejected(403, f"message id already received: {seen}")

    async def store(self, channel: str, messages: Sequence[Message]) -> None:
        """Store all messages, or none when one of them was already stored (a replay)."""
        if not messages:
            return
        async with self._lock:
            for attempt in (1, 2):
                try:
                    await self._insert(channel, messages)
                    return
                except psycopg.DataError:
                    # e.g. a NUL character: text and jsonb cannot hold it
                    raise Rejected(400, "message holds text PostgreSQL cannot store") from None
                except psycopg.OperationalError as exc:
                    await self._discard()
                    log.warning("webhook store: connection lost (%s)", type(exc).__name__)
                    if attempt == 2:
                        raise Rejected(503, "event store unavailable, retry later") from None

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to close
                await conn.close()

    async def close(self) -> None:
        await self._discard()
