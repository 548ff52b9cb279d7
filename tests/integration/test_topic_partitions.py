"""Topics are created at start-up with the registry's partitions, or with the count the
deployment sets (``CONVEYOR_TOPIC_PARTITIONS``; `conveyor up` sets 1 on its embedded broker,
where every partition costs CPU on every fetch)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from shared.schemas.topics import TOPICS
from tests.integration.harness import Stack


async def partitions(bootstrap: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        existing = await consumer.topics()
        return {
            name: len(consumer.partitions_for_topic(name) or ())
            for name in TOPICS
            if name in existing
        }
    finally:
        await consumer.stop()


async def test_a_service_creates_the_registry_topics_with_their_partitions(stack: Stack) -> None:
    await stack.start("fulfillment.packing")
    assert await partitions(stack.bootstrap) == {t.name: t.partitions for t in TOPICS.values()}


async def test_a_set_partition_count_applies_to_every_topic_created(stack: Stack) -> None:
    await stack.start("fulfillment.packing", topic_partitions="1")
    assert await partitions(stack.bootstrap) == {name: 1 for name in TOPICS}
