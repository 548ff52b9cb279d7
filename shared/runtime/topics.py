"""Create every registered topic at start-up with its partition count (idempotent)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.runtime.logging import get_logger
from shared.schemas.topics import CONSUMING_SERVICES, TOPICS, dlq_topic

TOPIC_ALREADY_EXISTS = 36
DLQ_PARTITIONS = 1

log = get_logger(__name__)


async def at_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    """Whether ``consumer`` has read every partition up to its fetch high-watermark (the
    embedded broker's ``end_offsets`` is unreliable; the fetch high-watermark is not)."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


def registry_topics(partitions: int | None = None) -> dict[str, int]:
    """Every topic and its partition count: the registry's, or ``partitions`` for all."""
    wanted = {t.name: partitions or t.partitions for t in TOPICS.values()}
    wanted.update({dlq_topic(s): DLQ_PARTITIONS for s in CONSUMING_SERVICES})
    return wanted


async def ensure_topics(
    bootstrap: str, partitions: int | None = None, timeout_s: float = 60.0
) -> dict[str, int]:
    """Create missing topics (an existing topic keeps its partitions); waits for the broker
    to come up first."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="conveyor-admin")
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((KafkaConnectionError, OSError)),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_delay(timeout_s),
        reraise=True,
    ):
        with attempt:
            await admin.start()
    try:
        wanted = registry_topics(partitions)
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor=1)
                for name, partitions in wanted.items()
            ]
        )
        for name, code, message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {name}: {code} {message}")
        return wanted
    finally:
        await admin.close()
