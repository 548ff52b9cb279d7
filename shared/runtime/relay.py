"""Outbox relay: publishes a service's outbox rows in id order (acks=all), marks them
sent, and keeps sent rows for a retention period — the service's durable event log.

It wakes on LISTEN/NOTIFY (sent at commit by the unit of work) and also polls, so a
missed notification only delays, never loses. Only one relay per service publishes at a
time (a Postgres advisory lock), which keeps the order of the rows.

At-least-once: a crash after Kafka acked and before the rows are marked sent publishes
those rows again on restart; consumers deduplicate them by ``ce_id`` in their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.runtime.db import reset_session
from shared.runtime.failpoints import failpoint
from shared.runtime.logging import get_logger
from shared.runtime.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from shared.runtime.settings import Settings
from shared.runtime.uow import notify_channel

log = get_logger(__name__)

PURGE_EVERY_S = 300.0


def build_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.group_instance_id}-relay",
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=settings.linger_ms,
    )


async def start_producer(producer: AIOKafkaProducer) -> None:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((KafkaConnectionError, OSError)),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_delay(60),
        reraise=True,
    ):
        with attempt:
            await producer.start()


class OutboxRelay:
    def __init__(
        self, *, settings: Settings, service: str, schema: str, pool: asyncpg.Pool
    ) -> None:
        self.settings = settings
        self.service = service
        self.schema = schema
        self.pool = pool
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()  # running: ready, whether or not it leads
        self.leading = asyncio.Event()  # holds the lock and publishes
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer

    async def run(self) -> None:
        self._producer = build_producer(self.settings)
        await start_producer(self._producer)
        listener: asyncpg.Connection = await self.pool.acquire()
        try:
            # a second instance of a service is ready although its relay waits for the lock
            self.started.set()
            await self._become_leader(listener)
            await listener.add_listener(notify_channel(self.schema), self._on_notify)
            self.leading.set()
            log.info("relay.started")
            loop = asyncio.get_running_loop()
            next_purge = loop.time()
            while not self.stopping.is_set():
                published = await self._publish_until_broker_answers(listener)
                if loop.time() >= next_purge:
                    await self.purge_sent(listener)
                    next_purge = loop.time() + PURGE_EVERY_S
                if published < self.settings.relay_batch_size:
                    await self._sleep_until_woken()
        finally:
            await self._producer.stop()
            try:
                await reset_session(listener)  # LISTEN and the session advisory lock
            finally:
                await self.pool.release(listener)
            log.info("relay.stopped")

    async def _become_leader(self, conn: asyncpg.Connection) -> None:
        """Session advisory lock: a second relay of the same service waits here."""
        key = zlib.crc32(f"conveyor-relay:{self.schema}".encode())
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            log.info("relay.waiting_for_lock")
            await self._sleep_until_woken()
            if self.stopping.is_set():
                return

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep_until_woken(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.settings.relay_poll_interval_s)
        self._wake.clear()

    async def _publish_until_broker_answers(self, conn: asyncpg.Connection) -> int:
        """Rows wait safely in PostgreSQL while the broker is away: back off, don't crash.

        Each round is bounded in time, and a failed round gets a fresh producer: aiokafka's
        producer does not always recover from a broker restart (aiokafka #267, #517). An
        interrupted round leaves its rows unsent, so they go again with the same ce_id.
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((KafkaError, TimeoutError)),
            wait=wait_exponential(multiplier=0.1, max=5.0),
            stop=lambda _: self.stopping.is_set(),
            before_sleep=lambda state: log.warning(
                "relay.publish_retry", attempt=state.attempt_number, error=repr(state.outcome)
            ),
            reraise=True,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    await self._replace_producer()
                return await asyncio.wait_for(
                    self.publish_pending(conn, self._producer),
                    self.settings.relay_publish_timeout_s,
                )
        return 0

    async def _replace_producer(self) -> None:
        with contextlib.suppress(KafkaError, TimeoutError):
            await asyncio.wait_for(self._producer.stop(), 5)
        self._producer = build_producer(self.settings)
        await self._producer.start()

    async def publish_pending(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> int:
        """One round on the relay's own connection (the one holding its lock): no pool
        acquire and release, whose reset costs a round trip, for each statement."""
        rows = await conn.fetch(
            """SELECT id, topic, key, header_names, header_values, payload
               FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1""",
            self.settings.relay_batch_size,
        )
        if not rows:
            OUTBOX_BACKLOG.labels(self.service).set(0)
            return 0
        failpoint("relay.before_publish")
        await self._publish(producer, rows)
        failpoint("relay.after_publish")
        await conn.execute(
            "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        for row in rows:
            OUTBOX_PUBLISHED.labels(self.service, row["topic"]).inc()
        if len(rows) == self.settings.relay_batch_size:
            backlog = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            OUTBOX_BACKLOG.labels(self.service).set(backlog)
        else:
            OUTBOX_BACKLOG.labels(self.service).set(0)
        return len(rows)

    async def _publish(self, producer: AIOKafkaProducer, rows: Sequence[asyncpg.Record]) -> None:
        # send() only enqueues, in order, per partition; then wait for every ack
        pending = [
            await producer.send(
                row["topic"],
                value=row["payload"],
                key=row["key"],
                headers=list(zip(row["header_names"], row["header_values"], strict=True)),
            )
            for row in rows
        ]
        await asyncio.gather(*pending)

    async def purge_sent(self, conn: asyncpg.Connection) -> None:
        deleted = await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
            self.settings.outbox_retention_hours * 3600,
        )
        log.info("relay.purged", result=deleted)
