"""How many records an order moves through the broker, counted from the topics' fetch
high-watermarks, and what moving them alone allows on this machine: the broker-only
ceiling.

Every record a service produces is read by each running service that consumes its topic,
so an order costs P produces and C consumes. The raw round trip measures the CPU (client
and broker) of one produce plus one consume; an order's traffic then costs that times
(P + C) / 2, and with no service work at all the machine's cores could not move more
orders per second than they have CPU for that traffic."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.schemas.topics import TOPICS


@dataclass(frozen=True)
class Traffic:
    produced_per_order: float
    consumed_per_order: float

    def cpu_ms_per_order(self, cpu_ms_per_round_trip: float) -> float:
        return cpu_ms_per_round_trip * (self.produced_per_order + self.consumed_per_order) / 2

    def ceiling(self, cpu_ms_per_round_trip: float, cores: float) -> float:
        """Orders/s the cores could move if the broker traffic were all they did."""
        cost = self.cpu_ms_per_order(cpu_ms_per_round_trip)
        return cores * 1000 / cost if cost else 0.0


async def records_per_topic(bootstrap: str, timeout_s: float = 30.0) -> dict[str, int]:
    """Records in each registry topic: the sum of its partitions' high-watermarks (Tansu's
    ``end_offsets`` is unreliable; a fetch response's high-watermark is not)."""
    # small fetches: only each partition's first response, which carries its watermark
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=20, max_partition_fetch_bytes=1024
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(name, p)
            for name in TOPICS
            if name in existing
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while any(consumer.highwater(tp) is None for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError("no high-watermark for some partitions")
            await consumer.getmany(timeout_ms=100)
        counts: dict[str, int] = {}
        for tp in partitions:
            counts[tp.topic] = counts.get(tp.topic, 0) + (consumer.highwater(tp) or 0)
        return counts
    finally:
        await consumer.stop()


def traffic(counts: dict[str, int], running: set[str], orders: int) -> Traffic:
    """Per order, over ``orders`` orders: records produced, and records consumed by the
    running services (a topic's records times its running consumers)."""
    produced = consumed = 0
    for name, records in counts.items():
        readers = [c for c in TOPICS[name].consumers if c in running]
        produced += records
        consumed += records * len(readers)
    return Traffic(produced / orders, consumed / orders)
