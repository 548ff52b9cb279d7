"""Dead letters back to where they came from (``conveyor dlq show|redrive SERVICE``).

A record a service could not process lands in ``<service>.dlq`` untouched, with
``dlq_*`` headers saying why and from where (``consumer.dead_letter``). Once the cause is
gone — the carrier answers again, a fixed release is deployed — the operator re-drives:
each dead letter is published again as it was (key, value and its own headers, so the
same ``ce_id``) to the topic it came from. Every consumer group of that topic sees it
again: the ones that applied it skip it by their inbox, and the service that failed
applies it afresh (its dead-lettering is keyed by the record's position, not its ce_id).

Progress is kept by the consumer group ``<service>-dlq-redrive``: offsets are committed
once the broker acknowledged the re-published records, so an interrupted re-drive
resumes where it stopped, and ``show`` lists only what has not been re-driven yet. A
crash between the acks and the commit re-drives those records twice, which the
consumers' inboxes make harmless.

A letter cut to fit the dead-letter topic (``dlq_truncated``: the original was too large
to copy whole) no longer holds the record, so it is set aside, never re-driven: the
group moves past it, and the command says how many.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.runtime.topics import at_end
from shared.schemas import dlq_topic

DLQ_HEADER_PREFIX = "dlq_"
READ_TIMEOUT_S = 15.0


class RedriveError(Exception):
    """The dead-letter topic could not be read or re-published; nothing was committed
    past what was acknowledged."""


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord[bytes, bytes]

    def header(self, name: str) -> str:
        for key, value in self.record.headers or ():
            if key == name:
                return value.decode(errors="replace")
        return ""

    @property
    def reason(self) -> str:
        return self.header("dlq_reason")

    @property
    def detail(self) -> str:
        return self.header("dlq_detail")

    @property
    def original_topic(self) -> str:
        return self.header("dlq_original_topic")

    @property
    def event_type(self) -> str:
        return self.header("ce_type")

    @property
    def failed_at(self) -> str:
        return self.header("dlq_failed_at")

    @property
    def cut(self) -> bool:
        """Only part of the original record is here (see ``consumer.dead_letter``)."""
        return bool(self.header("dlq_truncated"))

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.record.headers or () if not k.startswith(DLQ_HEADER_PREFIX)]


def group_for(service: str) -> str:
    return f"{service}-dlq-redrive"


async def _open(bootstrap: str, service: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A consumer on every partition of the DLQ, at the re-drive group's position."""
    topic = dlq_topic(service)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_for(service),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    try:
        await consumer.start()
        if topic not in await consumer.topics():
            return consumer, []  # nothing was ever dead-lettered by this service
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)  # no group membership: nobody else reads this group
    except BaseException:
        await consumer.stop()
        raise
    return consumer, tps


async def _read_to_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> list[DeadLetter]:
    """Every record from the group's position up to each partition's fetch high-watermark."""
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        batch = await consumer.getmany(*tps, timeout_ms=100)
        for records in batch.values():
            letters.extend(DeadLetter(r) for r in records)
        if await at_end(consumer, tps):
            return letters
        if time.monotonic() > deadline:
            raise RedriveError(f"could not read {tps[0].topic} to its end in {READ_TIMEOUT_S}s")


async def pending(bootstrap: str, service: str) -> list[DeadLetter]:
    """The service's dead letters not re-driven yet, oldest first per partition."""
    consumer, tps = await _open(bootstrap, service)
    try:
        return await _read_to_end(consumer, tps) if tps else []
    finally:
        await consumer.stop()


def last_offsets(letters: list[DeadLetter]) -> dict[int, int]:
    """Per DLQ partition, the offset of the last of ``letters``."""
    last: dict[int, int] = {}
    for letter in letters:
        last[letter.record.partition] = max(
            last.get(letter.record.partition, -1), letter.record.offset
        )
    return last


async def redrive(
    bootstrap: str,
    service: str,
    *,
    up_to: dict[int, int] | None = None,
    on_sent: Callable[[DeadLetter], None] = lambda _: None,
) -> list[DeadLetter]:
    """Re-publish the pending dead letters to their original topics, except those
    :attr:`DeadLetter.cut`, which are set aside; returns the re-published ones.

    ``up_to`` (partition → last offset, inclusive, from :func:`last_offsets`): only those
    the operator was shown; letters that arrived since stay pending.
    """
    consumer, tps = await _open(bootstrap, service)
    try:
        letters = await _read_to_end(consumer, tps) if tps else []
        if up_to is not None:
            letters = [
                letter
                for letter in letters
                if letter.record.offset <= up_to.get(letter.record.partition, -1)
            ]
        if not letters:
            return []
        unknown = [letter for letter in letters if not letter.original_topic]
        if unknown:
            raise RedriveError(
                f"{len(unknown)} records in {dlq_topic(service)} carry no dlq_original_topic "
                "(not written by a Conveyor service): nothing was re-driven"
            )
        whole = [letter for letter in letters if not letter.cut]
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            acks = []
            for letter in whole:
                ack = await producer.send(
                    letter.original_topic,
                    key=letter.record.key,
                    value=letter.record.value,
                    headers=letter.original_headers(),
                )
                ack.add_done_callback(lambda _, sent=letter: on_sent(sent))
                acks.append(ack)
            await asyncio.gather(*acks)
        finally:
            await producer.stop()
        # only now, every record acknowledged: move the group past them (and the cut ones)
        done = last_offsets(letters)
        await consumer.commit({tp: done[tp.partition] + 1 for tp in tps if tp.partition in done})
        return whole
    finally:
        await consumer.stop()
