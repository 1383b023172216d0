"""The push receiver's event store: verified messages into `raw.webhook_events`.

One async connection, serialised by a lock (inserts are tiny; the receiver stays fast). The
sensor side reads the same table through `connectors.push_load`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import psycopg

from connectors.push_verify import Message, Rejected
from connectors.raw_schema import BOOKKEEPING_DDL

_INSERT = """
insert into raw.webhook_events (channel, message_id, topic, order_nos, payload)
values (%s, %s, %s, %s, %s)
on conflict (channel, message_id) do nothing
returning id
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

    async def store(self, channel: str, messages: Sequence[Message]) -> None:
        """Store all messages, or none when one of them was already stored (a replay)."""
        async with self._lock:
            conn = await self._connection()
            async with conn.transaction():
                for m in messages:
                    cur = await conn.execute(
                        _INSERT,
                        [
                            channel,
                            m.message_id,
                            m.topic,
                            m.order_nos,
                            json.dumps(m.payload, ensure_ascii=False, default=str),
                        ],
                    )
                    if await cur.fetchone() is None:
                        # raising inside the transaction block rolls back what it stored
                        raise Rejected(403, f"message id already received: {m.message_id}")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
