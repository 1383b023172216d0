"""The push receiver's event store: verified messages into `raw.webhook_events`.

A few async connections (default 4), one request on each at a time; one statement per request
(all its messages at once; a transaction around it only when there are several). A connection
that died under it (PostgreSQL restarted, the backend killed) is replaced and the statement
retried once, so the first push after a restart is stored, not answered 500; while the server
stays down the request is refused with 503 (the platform retries).
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


class _Slot:
    """One connection of the store (None until first used, or after it broke)."""

    conn: psycopg.AsyncConnection | None = None


class WebhookStore:
    """Stores verified messages; a message id seen before makes the whole request a replay.

    `connections` slots, each used by one request at a time (a request waits for a free one),
    connected on first use: several requests' round trips overlap; the unique key decides
    between two racing copies of one message, whichever connection they use."""

    def __init__(self, db_url: str, connections: int = 4):
        self.db_url = db_url
        # last in, first out: a quiet receiver keeps reusing one warm connection
        self._free: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        self._slots = [_Slot() for _ in range(connections)]
        for slot in self._slots:
            self._free.put_nowait(slot)

    async def _connection(self, slot: _Slot) -> psycopg.AsyncConnection:
        if slot.conn is None or slot.conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self.db_url, autocommit=True, application_name="orderpulse-webhook"
            )
            await conn.execute("select pg_advisory_lock(hashtext('orderpulse.raw_schema'))")
            try:
                await conn.execute(BOOKKEEPING_DDL.format())
            finally:
                await conn.execute("select pg_advisory_unlock(hashtext('orderpulse.raw_schema'))")
            slot.conn = conn
        return slot.conn

    async def _insert(self, slot: _Slot, channel: str, messages: Sequence[Message]) -> None:
        conn = await self._connection(slot)
        params = {
            "channel": channel,
            "ids": [m.message_id for m in messages],
            "topics": [m.topic for m in messages],
            "order_nos": [json.dumps(m.order_nos) for m in messages],
            "payloads": [json.dumps(m.payload, ensure_ascii=False, default=str) for m in messages],
        }
        # one message (the usual request) is one autocommitted statement: atomic already
        block = conn.transaction() if len(messages) > 1 else contextlib.nullcontext()
        async with block:
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
        slot = await self._free.get()
        try:
            for attempt in (1, 2):
                try:
                    await self._insert(slot, channel, messages)
                    return
                except (psycopg.DataError, UnicodeEncodeError):
                    # a NUL character or a lone surrogate: text and jsonb cannot hold them
                    raise Rejected(400, "message holds text PostgreSQL cannot store") from None
                except psycopg.OperationalError as exc:
                    await self._discard(slot)
                    log.warning("webhook store: connection lost (%s)", type(exc).__name__)
                    if attempt == 2:
                        raise Rejected(503, "event store unavailable, retry later") from None
        finally:
            self._free.put_nowait(slot)

    @staticmethod
    async def _discard(slot: _Slot) -> None:
        conn, slot.conn = slot.conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: nothing to close
                await conn.close()

    async def close(self) -> None:
        for slot in self._slots:
            await self._discard(slot)
