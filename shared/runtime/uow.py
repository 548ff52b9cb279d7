"""Unit of work: one Postgres transaction holding the inbox entry, the state change and
the outgoing events (outbox rows). Nothing reaches Kafka unless this commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

import asyncpg

from shared.schemas import Envelope, Message, to_headers, topic_for_message
from shared.schemas.envelope import Headers


def notify_channel(schema: str) -> str:
    return f"outbox_{schema}"


class Delivery(NamedTuple):
    """Where an event came from, as its inbox row records it."""

    event_id: str
    topic: str
    partition: int
    offset: int
    event_type: str | None


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
    # buffered: outbox rows are written together when the unit of work ends (one
    # pipelined round trip), for callers that roll back as a whole, never to a savepoint
    buffered: bool = False
    _pending: list[OutboxRecord] = field(default_factory=list)
    _outbox_rows: int = 0

    async def first_delivery(self, delivery: Delivery) -> bool:
        """Record the event in the inbox; False if it was already processed."""
        return delivery.event_id in await self.first_deliveries([delivery])

    async def first_deliveries(self, deliveries: Sequence[Delivery]) -> set[str]:
        """Record many events in the inbox in one statement; the ids not seen before."""
        if not deliveries:
            return set()
        rows = await self.conn.fetch(
            """INSERT INTO inbox (event_id, topic, partition, "offset", event_type)
               SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[])
               ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
            *(list(column) for column in zip(*deliveries, strict=True)),
        )
        return {r["event_id"] for r in rows}

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
        if self.buffered:
            self._pending.append(record)
        else:
            await self._write([record])

    async def flush(self) -> None:
        """Write the buffered outbox rows, in emission order."""
        records, self._pending = self._pending, []
        if records:
            await self._write(records)

    async def _write(self, records: Sequence[OutboxRecord]) -> None:
        # executemany pipelines the rows: one round trip, ids in the order given
        await self.conn.executemany(
            """INSERT INTO outbox (event_id, topic, key, header_names, header_values, payload,
                                 event_type)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            [
                (
                    r.event_id,
                    r.topic,
                    r.key,
                    [name for name, _ in r.headers],
                    [value for _, value in r.headers],
                    r.payload,
                    r.event_type,
                )
                for r in records
            ],
        )
        if self._outbox_rows == 0:
            # delivered at commit, once per transaction: wakes the relay without polling
            await self.conn.execute("SELECT pg_notify($1, '')", notify_channel(self.schema))
        self._outbox_rows += len(records)


@asynccontextmanager
async def unit_of_work(
    pool: asyncpg.Pool, service: str, schema: str, *, buffered: bool = False
) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn=conn, service=service, schema=schema, buffered=buffered)
        yield uow
        await uow.flush()
