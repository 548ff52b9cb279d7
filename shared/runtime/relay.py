"""Outbox relay: publishes a service's outbox rows in id order (acks=all), marks them
sent, and keeps sent rows for a retention period — the service's durable event log.

It wakes on LISTEN/NOTIFY (sent at commit by the unit of work) and also polls, so a
missed notification only delays, never loses. Only one relay per service publishes at a
time (a Postgres advisory lock), which keeps the order of the rows.

At-least-once: a crash after Kafka acked and before the rows are marked sent publishes
those rows again on restart; consumers deduplicate them by ``ce_id`` in their inbox.

A broker that lost its log answers a publish with an offset at or below one it gave this
relay before: those rows are not marked sent, and ``on_broker_lost`` tells the broker
watch, which republishes the whole retained outbox (:mod:`shared.runtime.watch`). Nothing is
published before ``publish_allowed`` is set: the watch sets it once it has compared the
broker with the one the outbox was last published to.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable, Sequence

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


class BrokerLost(Exception):
    """The broker answered with an offset it had given out before: its log was lost."""


class OutboxRelay:
    def __init__(
        self,
        *,
        settings: Settings,
        service: str,
        schema: str,
        pool: asyncpg.Pool,
        on_broker_lost: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.schema = schema
        self.pool = pool
        self.on_broker_lost = on_broker_lost
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()  # running: ready, whether or not it leads
        self.leading = asyncio.Event()  # holds the lock and publishes
        # held for each publish round: the broker watch takes it to mark rows unsent
        # without a round marking them sent again behind its back
        self.round_lock = asyncio.Lock()
        self.publish_allowed = asyncio.Event()
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer
        # the highest offset each partition gave this relay: a broker that lost its log
        # gives lower ones again
        self._offsets: dict[tuple[str, int], int] = {}

    async def run(self) -> None:
        """Publish until stopped, then drain what is unsent for a bounded time. Raises if
        the database goes away; the service runs it again (with back-off) when it does."""
        self._producer = build_producer(self.settings)
        await start_producer(self._producer)
        listener: asyncpg.Connection | None = None
        try:
            listener = await self.pool.acquire()
            # a second instance of a service is ready although its relay waits for the lock
            self.started.set()
            await self._become_leader(listener)
            while not (self.publish_allowed.is_set() or self.stopping.is_set()):
                await self._sleep_until_woken()
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
            if self.leading.is_set() and self.publish_allowed.is_set():
                await self._drain(listener)
        finally:
            self.started.clear()
            self.leading.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 5)
            if listener is not None:
                await self._release(listener)
            log.info("relay.stopped")

    async def _release(self, listener: asyncpg.Connection) -> None:
        """Give the connection back without its LISTEN and session lock; one that died
        with the database is dropped instead (the pool opens a new one)."""
        try:
            await reset_session(listener)
        except Exception as exc:  # the connection is gone with the server
            log.info("relay.connection_dropped", error=repr(exc))
        with contextlib.suppress(Exception):
            await self.pool.release(listener)

    async def _drain(self, conn: asyncpg.Connection) -> None:
        """On a stop: publish what the last transactions wrote, for a bounded time, so a
        broker stopped next has it (what is left goes at the next start)."""
        try:
            async with asyncio.timeout(self.settings.drain_timeout_s):
                while await self.publish_pending(conn, self._producer):
                    pass
        except (KafkaError, TimeoutError, BrokerLost) as exc:
            log.warning("relay.drain_incomplete", error=repr(exc))

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

    def wake(self) -> None:
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
                try:
                    async with self.round_lock:
                        return await asyncio.wait_for(
                            self.publish_pending(conn, self._producer),
                            self.settings.relay_publish_timeout_s,
                        )
                except BrokerLost as exc:
                    log.error("relay.broker_lost", detail=str(exc))
                    self._offsets.clear()  # the new log's offsets start again
                    self.on_broker_lost(str(exc))
                    return 0  # the rows stay unsent: the next round publishes them again
        return 0

    def forget_offsets(self) -> None:
        """The broker watch found a new broker: offsets start again from there."""
        self._offsets.clear()

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
        acks = await asyncio.gather(*pending)
        went_back = []
        for ack in acks:
            where = (ack.topic, ack.partition)
            if ack.offset <= self._offsets.get(where, -1):
                went_back.append(f"{ack.topic}:{ack.partition} at {ack.offset}")
            self._offsets[where] = max(ack.offset, self._offsets.get(where, -1))
        if went_back:
            raise BrokerLost("offsets given out before were given again: " + ", ".join(went_back))

    async def purge_sent(self, conn: asyncpg.Connection) -> None:
        deleted = await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
            self.settings.outbox_retention_hours * 3600,
        )
        log.info("relay.purged", result=deleted)
