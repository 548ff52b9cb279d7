"""Unit of work: one Postgres transaction holding the inbox entry, the state change and
the outgoing events (outbox rows). Nothing reaches Kafka unless this commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from shared.schemas import Envelope, Message, to_headers, topic_for_message
from shared.schemas.envelope import Headers


def notify_channel(schema: str) -> str:
    return f"outbox_{schema}"


@dataclass
class OutboxRecord:
    """A record to publish as-is: an event we emit, or a dead letter we forward."""

    topic: str
    key: bytes | None
    headers: Headers
    payload: bytes
    event_id: str
    event_type: str | None = None


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    service: str
    schema: str
    emitted: list[Envelope] = field(default_factory=list)
    _outbox_rows: int = 0

    async def first_delivery(
        self, event_id: str, *, topic: str, partition: int, offset: int, event_type: str | None
    ) -> bool:
        """Record the event in the inbox; False if it was already processed."""
        inserted = await self.conn.fetchval(
            """INSERT INTO inbox (event_id, topic, partition, "offset", event_type)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING 1""",
            event_id,
            topic,
            partition,
            offset,
            event_type,
        )
        return inserted is not None

    async def emit(self, message: Message, *, cause: Envelope | None = None) -> Envelope:
        """Append an event or command to the outbox, on its registered topic."""
        source = f"conveyor/{self.service}"
        data = message.to_json()
        if cause is not None:
            envelope = cause.caused(
                type=message.TYPE, source=source, data=data, subject=message.subject
            )
        else:
            envelope = Envelope(
                type=message.TYPE, source=source, data=data, subject=message.subject
            )
        await self.append(
            OutboxRecord(
                topic=topic_for_message(message.TYPE, self.service),
                key=message.subject.encode(),
                headers=to_headers(envelope),
                payload=data,
                event_id=envelope.id,
                event_type=message.TYPE,
            )
        )
        self.emitted.append(envelope)
        return envelope

    async def append(self, record: OutboxRecord) -> None:
        await self.conn.execute(
            """INSERT INTO outbox (event_id, topic, key, header_names, header_values, payload,
                                 event_type)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            record.event_id,
            record.topic,
            record.key,
            [name for name, _ in record.headers],
            [value for _, value in record.headers],
            record.payload,
            record.event_type,
        )
        if self._outbox_rows == 0:
            # delivered at commit, once per transaction: wakes the relay without polling
            await self.conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        self._outbox_rows += 1


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, service: str, schema: str) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        yield UnitOfWork(conn=conn, service=service, schema=schema)
