"""The batched consumer every service runs (aiokafka, manual commits).

Per ``getmany`` (records of every partition it returned, each partition's in order): one
Postgres transaction applies every record (inbox + state + outbox), then the offsets are
committed in one request. A crash anywhere repeats work, and the inbox makes the repeat a
no-op. A handler may be :class:`Batched`: it then gets each run of consecutive records it
handles at once (records the service has no handler for don't end a run), so it can read
and write the run set-based (a few statements for the run, not a few per record).

Failures are sorted three ways:
- poison (not an envelope, unknown type/version, invalid data of a type it handles) →
  dead-letter topic at once, inside the same transaction, through the outbox;
- a handler that raises → the records before it commit, it is retried alone with
  backoff, and after ``max_attempts`` it is dead-lettered; the partition moves on;
- a transient infrastructure error (database gone, serialization failure) → the whole
  batch is retried with backoff until it works or the process stops: it is not the
  record's fault, so it must not end in the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from shared.runtime.db import UNREACHABLE
from shared.runtime.failpoints import failpoint
from shared.runtime.logging import get_logger
from shared.runtime.metrics import (
    BATCH_SIZE,
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVENTS_CONSUMED,
    HANDLER_SECONDS,
    RETRIES,
)
from shared.runtime.settings import Settings
from shared.runtime.topics import at_end
from shared.runtime.uow import Delivery, OutboxRecord, UnitOfWork, unit_of_work
from shared.schemas import (
    TOPICS,
    Envelope,
    Message,
    PoisonMessage,
    dlq_topic,
    from_record,
    is_upcast,
    model_for,
    parse,
)
from shared.schemas.envelope import Headers
from shared.schemas.topics import EXTERNAL

RecordHandler = Callable[[UnitOfWork, Message, Envelope], Awaitable[None]]
T = TypeVar("T")
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Batched:
    """A handler applied to a run of consecutive records in one call.

    It must leave the same state, and emit the same events in the same order, as applying
    the records one by one in the order given; a run may hold one record (when a failing
    batch is redone record by record)."""

    apply: Callable[[UnitOfWork, Sequence[tuple[Message, Envelope]]], Awaitable[None]]


Handler = RecordHandler | Batched


def run_of(kind: type[M], events: Sequence[tuple[Message, Envelope]]) -> list[tuple[M, Envelope]]:
    """A Batched handler's run, typed: the handler is registered for ``kind`` alone."""
    typed = []
    for message, envelope in events:
        assert isinstance(message, kind)
        typed.append((message, envelope))
    return typed


TRANSIENT: tuple[type[BaseException], ...] = (
    *UNREACHABLE,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

STOP_TIMEOUT_S = 5.0

log = get_logger(__name__)


class HandlerFailed(PoisonMessage):
    reason = "handler_failed"


class Undecodable(PoisonMessage):
    """Reading the record itself failed: nesting too deep for the parser, no memory for
    an absurd size, a header or value no decoder expected. Any such failure is the
    record's, so it is dead-lettered instead of ending the consumer."""

    reason = "invalid_data"


class RecordTooLarge(PoisonMessage):
    reason = "too_large"


@dataclass(frozen=True)
class Item:
    """One consumed record, decoded as far as it could be (or needed to be)."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope | None = None
    message: Message | None = None
    poison: PoisonMessage | None = None
    ignored: bool = False  # of a known type the service does not handle: data not parsed

    @property
    def position_key(self) -> str:
        r = self.record
        return f"pos:{r.topic}:{r.partition}:{r.offset}"


def decode(
    record: ConsumerRecord[bytes, bytes],
    handled: Container[str] | None = None,
    max_bytes: int | None = None,
) -> Item:
    """``handled``: the types the service handles (None: all). A record of another type
    changes nothing here, so its data is not parsed and validated — most of a record's
    decoding cost, and most records on a shared topic are of types a given service
    ignores. Its type must still be known; a type read as a newer one is parsed to
    learn which. ``max_bytes``: a larger value is refused before it is parsed.

    Never raises: whatever goes wrong reading one record is that record's problem."""
    size = len(record.value or b"")
    if max_bytes is not None and size > max_bytes:
        return Item(record, poison=RecordTooLarge(f"value of {size} bytes, limit {max_bytes}"))
    envelope = None
    try:
        envelope = from_record(list(record.headers or ()), record.value)
        if handled is not None and envelope.type not in handled and not is_upcast(envelope.type):
            model_for(envelope.type)  # an unknown type is poison for every reader
            return Item(record, envelope, ignored=True)
        return Item(record, envelope, parse(envelope))
    except PoisonMessage as poison:
        return Item(record, envelope, poison=poison)
    except (Exception, RecursionError, MemoryError) as exc:
        return Item(record, envelope, poison=Undecodable(f"{type(exc).__name__}: {exc}"[:500]))


# The relay publishes with aiokafka's default max_request_size (1 MiB): a larger dead
# letter would fail every publish round, and the service's whole outbox behind it with it.
# The broker takes more, so a record at (or above) max_record_bytes does arrive.
DLQ_MAX_RECORD_BYTES = 1_000_000
DLQ_MAX_KEY_BYTES = 1024  # only where the record would not fit otherwise


def dead_letter(service: str, item: Item, problem: PoisonMessage) -> OutboxRecord:
    """The original record, untouched, plus why and where it came from.

    Untouched as far as a dead letter can be: a header name's NUL (PostgreSQL text
    cannot hold it) is written as U+FFFD, and a record that would not fit under
    ``DLQ_MAX_RECORD_BYTES`` with its ``dlq_*`` headers loses what does not fit — the end
    of a long key, its own headers if they take half, the end of its value — and says so
    (``dlq_truncated``, ``dlq_original_bytes``)."""
    r = item.record
    original = [(name.replace("\x00", "\ufffd"), value) for name, value in r.headers or ()]
    dlq = [
        ("dlq_reason", problem.reason.encode()),
        ("dlq_detail", problem.detail[:2000].encode()),
        ("dlq_service", service.encode()),
        ("dlq_original_topic", r.topic.encode()),
        ("dlq_original_partition", str(r.partition).encode()),
        ("dlq_original_offset", str(r.offset).encode()),
        ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    key, headers, payload = _fitted(r.key, original, dlq, r.value or b"")
    return OutboxRecord(
        topic=dlq_topic(service),
        key=key,
        headers=headers,
        payload=payload,
        event_id=f"dlq:{service}:{r.topic}:{r.partition}:{r.offset}",
        # only a registered type: a poison record's type may be anything at all
        event_type=item.message.TYPE if item.message else None,
    )


def _fitted(
    key: bytes | None, original: Headers, dlq: Headers, value: bytes
) -> tuple[bytes | None, Headers, bytes]:
    """Key, headers and value of a dead letter, cut to fit ``DLQ_MAX_RECORD_BYTES``."""
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes
    if size(key, value, [*original, *dlq]) <= DLQ_MAX_RECORD_BYTES:
        return key, [*original, *dlq], value
    notes = [("dlq_original_bytes", str(len(value)).encode())]
    cut = []
    if key is not None and len(key) > DLQ_MAX_KEY_BYTES:
        key = key[:DLQ_MAX_KEY_BYTES]
        cut.append("key")
    if size(key, b"", [*original, *dlq, *notes]) > DLQ_MAX_RECORD_BYTES // 2:
        original = []
        cut.insert(0, "headers")
    longest_note = ("dlq_truncated", b"headers,key,value")
    room = DLQ_MAX_RECORD_BYTES - size(key, b"", [*original, *dlq, *notes, longest_note]) - 8
    if len(value) > room:
        value = value[: max(room, 0)]
        cut.append("value")
    return key, [*original, *dlq, *notes, ("dlq_truncated", ",".join(cut).encode())], value


def record_context(message: Message, envelope: Envelope) -> contextlib.AbstractContextManager[None]:
    """Log lines inside name the record they are about. The runtime binds it around a
    record handler; a Batched handler binds it around each record of its run."""
    return structlog.contextvars.bound_contextvars(
        event_id=envelope.id,
        event_type=message.TYPE,
        correlation_id=envelope.correlation_id or envelope.id,
        order_id=getattr(message, "order_id", None),
        subject=envelope.subject,
    )


@dataclass(frozen=True)
class Run:
    """Consecutive fresh records of one :class:`Batched` handler, applied in one call."""

    handler: Batched
    items: list[Item]


def plan_runs(
    items: Sequence[Item], handlers: Mapping[str, Handler], fresh: set[str]
) -> tuple[list[Item | Run], list[tuple[Item, str]]]:
    """A batch as the steps that apply it, in order: runs of a Batched handler's records,
    and single records (record handlers, poison).

    A record of a type the service does not handle is no step: it changes nothing, so it
    doesn't end a run (a service handling a few of a topic's types still gets long runs);
    nor is a repeat of a batched record's id. Returns the steps, and the outcomes known
    already. ``fresh``: the ids new to the inbox, each taken by the first record with it.
    """
    steps: list[Item | Run] = []
    known: list[tuple[Item, str]] = []
    run: Run | None = None
    for item in items:
        handler = handlers.get(item.message.TYPE) if item.message is not None else None
        if item.ignored or (item.message is not None and handler is None):
            known.append((item, "ignored"))
        elif not isinstance(handler, Batched):
            steps.append(item)
            run = None
        elif not first_of_its_id(item, fresh):
            known.append((item, "duplicate"))
        else:
            if run is None or run.handler is not handler:
                run = Run(handler, [])
                steps.append(run)
            run.items.append(item)
            known.append((item, "handled"))
    return steps, known


def first_of_its_id(item: Item, fresh: set[str]) -> bool:
    """Whether this record is the first to carry its id (the batch's inbox is written)."""
    assert item.envelope is not None
    first = item.envelope.id in fresh
    fresh.discard(item.envelope.id)
    return first


class _Rewind(ConsumerRebalanceListener):
    """After the broker lost its log: start every partition assigned at its beginning."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.done: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        fresh = set(assigned) - self.done
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)
            self.done |= fresh


class BatchConsumer:
    def __init__(
        self,
        *,
        settings: Settings,
        service: str,
        schema: str,
        pool: asyncpg.Pool,
        topics: Sequence[str],
        handlers: Mapping[str, Handler],
    ) -> None:
        self.settings = settings
        self.service = service
        self.schema = schema
        self.pool = pool
        self.topics = list(topics)
        self.handlers = handlers
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()
        # topics that storefronts write: on a stop, read up to their high-water mark first
        # (the embedded broker keeps them only in memory; what was read is in PostgreSQL)
        self.intake = [t for t in self.topics if t in TOPICS and EXTERNAL in TOPICS[t].writers]
        self._restart = asyncio.Event()
        self._from_beginning = False

    async def restart_from_beginning(self) -> None:
        """The broker lost its log: read every partition again from its first offset
        (the inbox skips what was applied). Returns once the request is taken."""
        self._from_beginning = True
        self._restart.set()

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until stopped; a restart request starts a fresh client in between."""
        try:
            while not self.stopping.is_set():
                self._restart.clear()
                await self._run_client()
        finally:
            self.started.clear()

    async def _run_client(self) -> None:
        s = self.settings
        from_beginning, self._from_beginning = self._from_beginning, False
        consumer = AIOKafkaConsumer(
            *([] if from_beginning else self.topics),  # as before: subscribed at start
            bootstrap_servers=s.kafka_bootstrap_servers,
            group_id=s.group_id,
            group_instance_id=s.group_instance_id,
            client_id=s.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_poll_records=s.max_poll_records,
        )
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((KafkaConnectionError, OSError)),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                await consumer.start()
        if from_beginning:
            consumer.subscribe(self.topics, listener=_Rewind(consumer))
        self.started.set()
        log.info("consumer.started", topics=self.topics, group=s.group_id, rewind=from_beginning)
        try:
            while not (self.stopping.is_set() or self._restart.is_set()):
                await self._poll(consumer)
            if self.stopping.is_set() and self.intake:
                await self._drain(consumer)
        finally:
            # bounded: stop() can hang when the group coordinator went away with the
            # broker; offsets are committed per batch, so giving up here loses nothing
            try:
                await asyncio.wait_for(consumer.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("consumer.stop_timed_out", timeout_s=STOP_TIMEOUT_S)
            log.info("consumer.stopped")

    async def _poll(self, consumer: AIOKafkaConsumer) -> int:
        batch = await consumer.getmany(timeout_ms=200)
        if not batch:
            return 0
        for tp, records in batch.items():
            BATCH_SIZE.labels(self.service, tp.topic).observe(len(records))
        # one transaction for every partition's records: under load, the
        # per-transaction and per-commit round trips are shared by many records
        await self.process([r for records in batch.values() for r in records])
        failpoint("consumer.after_db_commit")
        positions = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        # Waited for, not overlapped with the next batch: overlapping made polls
        # smaller and more frequent, and cost the lifecycle bench ~20% throughput.
        await self._commit(consumer, positions)
        return sum(len(records) for records in batch.values())

    async def _drain(self, consumer: AIOKafkaConsumer) -> None:
        """On a stop: go on until the storefront topics are read up to their high-water
        mark, for at most ``drain_timeout_s``. Records read are safe in PostgreSQL."""
        intake = [tp for tp in consumer.assignment() if tp.topic in self.intake]
        try:
            async with asyncio.timeout(self.settings.drain_timeout_s):
                while not await at_end(consumer, intake):
                    await self._poll(consumer)
        except TRANSIENT as exc:  # TimeoutError among them: the drain's own bound
            log.warning("consumer.drain_incomplete", error=repr(exc))
        else:
            log.info("consumer.drained", topics=self.intake)

    async def _commit(
        self, consumer: AIOKafkaConsumer, positions: Mapping[TopicPartition, int]
    ) -> None:
        try:
            await consumer.commit(dict(positions))
        except (CommitFailedError, IllegalStateError) as exc:
            # Rebalanced away: the new owner re-reads these records; the inbox skips them.
            log.warning(
                "consumer.commit_failed",
                partitions=[f"{tp.topic}:{tp.partition}" for tp in positions],
                error=str(exc),
            )
            return
        for tp, offset in positions.items():
            self._record_lag(consumer, tp, offset)

    def _record_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition, next_offset: int) -> None:
        highwater = consumer.highwater(tp)
        if highwater is not None:
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                highwater - next_offset
            )

    # -- one batch --------------------------------------------------------------------

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply records (each partition's in offset order) in as few transactions as
        the failures allow."""
        pending = [decode(r, self.handlers, self.settings.max_record_bytes) for r in records]
        while pending:
            started = time.perf_counter()
            applied, failure, attempts = await self._until_infrastructure_works(
                self._apply, pending
            )
            HANDLER_SECONDS.labels(self.service).observe(time.perf_counter() - started)
            pending = pending[applied:]
            if failure is not None:
                await self._retry_then_dead_letter(pending[0], failure, attempts)
                pending = pending[1:]

    async def _apply(self, items: Sequence[Item]) -> tuple[int, Exception | None, int]:
        """Apply items in one transaction; stop at the first failure.

        Returns how many were applied (they commit), the failure if any, and how many
        attempts the failing record has had.
        """
        if len(items) > 1:
            if await self._apply_all_or_nothing(items):
                return len(items), None, 1
            applied, failure = await self._apply_isolated(items)
            return applied, failure, 2  # it failed in the batch, then on its own
        applied, failure = await self._apply_isolated(items)
        return applied, failure, 1

    async def _apply_all_or_nothing(self, items: Sequence[Item]) -> bool:
        """The common case — every record applies — without a savepoint per record (two
        round trips each, a large share of a small handler's cost). On any failure the
        whole transaction rolls back and the batch goes again record by record, which
        finds and isolates the failing one; handlers are idempotent, so running them
        twice changes nothing."""
        try:
            async with unit_of_work(self.pool, self.service, self.schema, buffered=True) as uow:
                fresh = await uow.first_deliveries(
                    [self._delivery(item) for item in items if self._handled(item)]
                )
                steps, outcomes = plan_runs(items, self.handlers, fresh)
                for step in steps:
                    if isinstance(step, Run):
                        await self._apply_run(uow, step)
                    else:
                        outcomes.append((step, await self._apply_one(uow, step, fresh)))
        except TRANSIENT:
            raise
        except Exception as exc:
            log.info("consumer.batch_isolating_failure", error=repr(exc), records=len(items))
            RETRIES.labels(self.service, "handler").inc()  # the failing handler runs again
            return False
        for item, outcome in outcomes:
            self._count(item.record.topic, outcome)
        return True

    async def _apply_run(self, uow: UnitOfWork, run: Run) -> None:
        pairs = [(item.message, item.envelope) for item in run.items]
        with structlog.contextvars.bound_contextvars(batched_records=len(run.items)):
            await run.handler.apply(uow, pairs)  # type: ignore[arg-type]

    async def _apply_isolated(self, items: Sequence[Item]) -> tuple[int, Exception | None]:
        """Each item in a savepoint, so a failing one rolls back alone."""
        outcomes = []
        failure: Exception | None = None
        async with unit_of_work(self.pool, self.service, self.schema) as uow:
            for item in items:
                try:
                    async with uow.conn.transaction():
                        outcomes.append(await self._apply_one(uow, item))
                except TRANSIENT:
                    raise
                except Exception as exc:
                    failure = exc
                    break
        for item, outcome in zip(items, outcomes, strict=False):
            self._count(item.record.topic, outcome)
        return len(outcomes), failure

    def _handled(self, item: Item) -> bool:
        return item.message is not None and item.message.TYPE in self.handlers

    @staticmethod
    def _delivery(item: Item) -> Delivery:
        assert item.envelope is not None and item.message is not None
        r = item.record
        return Delivery(item.envelope.id, r.topic, r.partition, r.offset, item.message.TYPE)

    async def _apply_one(self, uow: UnitOfWork, item: Item, fresh: set[str] | None = None) -> str:
        """Apply one record; returns its outcome, counted once the transaction commits.

        ``fresh``: the batch's inbox already written, these ids new (each taken by the
        first record carrying it); None: write this record's inbox row now.
        """
        if item.poison is not None:
            return await self._dead_letter_in(uow, item, item.poison)
        if item.ignored:
            return "ignored"
        assert item.envelope is not None and item.message is not None
        handler = self.handlers.get(item.message.TYPE)
        if handler is None:
            return "ignored"
        if fresh is None:
            first = await uow.first_delivery(self._delivery(item))
        else:
            first = first_of_its_id(item, fresh)
        if not first:
            return "duplicate"
        with record_context(item.message, item.envelope):
            if isinstance(handler, Batched):
                await handler.apply(uow, [(item.message, item.envelope)])
            else:
                await handler(uow, item.message, item.envelope)
        return "handled"

    async def _dead_letter_in(self, uow: UnitOfWork, item: Item, problem: PoisonMessage) -> str:
        r = item.record
        # keyed by position, not ce_id: a redelivered record is not dead-lettered twice,
        # and a record re-driven from the DLQ later is processed afresh
        first = await uow.first_delivery(
            Delivery(item.position_key, r.topic, r.partition, r.offset, None)
        )
        if not first:
            return "duplicate"
        await uow.append(dead_letter(self.service, item, problem))
        DEAD_LETTERS.labels(self.service, problem.reason).inc()
        log.warning(
            "consumer.dead_lettered",
            reason=problem.reason,
            detail=problem.detail,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
        )
        return "dead_lettered"

    async def _retry_then_dead_letter(self, item: Item, failure: Exception, attempts: int) -> None:
        """``attempts``: how many the record has had; ``max_attempts`` bounds the total."""
        log.warning("consumer.handler_failed", error=repr(failure), offset=item.record.offset)
        try:
            if attempts >= self.settings.max_attempts:
                raise failure
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.settings.max_attempts - attempts),
                wait=wait_exponential(
                    multiplier=self.settings.retry_initial_s, max=self.settings.retry_max_s
                ),
                reraise=True,
            ):
                with attempt:
                    RETRIES.labels(self.service, "handler").inc()
                    _, failure_again, _ = await self._until_infrastructure_works(
                        self._apply, [item]
                    )
                    if failure_again is not None:
                        raise failure_again
        except Exception as exc:
            problem = HandlerFailed(f"{type(exc).__name__}: {exc}")
            await self._until_infrastructure_works(self._dead_letter_alone, item, problem)

    async def _dead_letter_alone(self, item: Item, problem: PoisonMessage) -> None:
        async with unit_of_work(self.pool, self.service, self.schema) as uow:
            outcome = await self._dead_letter_in(uow, item, problem)
        self._count(item.record.topic, outcome)

    async def _until_infrastructure_works(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Retry on transient errors with backoff, for as long as the process runs."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential(
                multiplier=self.settings.retry_initial_s, max=self.settings.retry_max_s
            ),
            stop=lambda _: self.stopping.is_set(),
            before_sleep=self._count_transient_retry,
            reraise=True,
        ):
            with attempt:
                return await fn(*args)
        raise AssertionError("unreachable")

    def _count_transient_retry(self, state: RetryCallState) -> None:
        RETRIES.labels(self.service, "transient").inc()
        log.warning(
            "consumer.transient_retry",
            attempt=state.attempt_number,
            error=repr(state.outcome.exception() if state.outcome else None),
        )

    def _count(self, topic: str, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self.service, topic, outcome).inc()
