"""The outside world's side of the contract: publish a command to Kafka the way a
storefront, a 3PL or an operator tool does (used by ``conveyor send`` and the CLIs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.schemas import Envelope, Message, model_for, to_headers, topic_for_message
from shared.schemas.registry import InvalidEventData
from shared.schemas.topics import EXTERNAL


@dataclass(frozen=True)
class Outgoing:
    """A message as the outside world sends it: on its registered topic, keyed by its
    subject, its data as the value and its envelope as CloudEvents headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event_id: str

    @classmethod
    def of(cls, message: Message, *, source: str) -> Outgoing:
        envelope = Envelope(
            type=message.TYPE, source=source, data=message.to_json(), subject=message.subject
        )
        return cls(
            topic=topic_for_message(message.TYPE, EXTERNAL),
            key=message.subject.encode(),
            value=envelope.data,
            headers=to_headers(envelope),
            event_id=envelope.id,
        )

    async def send(self, producer: AIOKafkaProducer) -> asyncio.Future[Any]:
        """Enqueue on ``producer``; the future resolves when the broker acknowledged it."""
        return await producer.send(self.topic, value=self.value, key=self.key, headers=self.headers)


async def publish(bootstrap: str, message: Message, *, source: str) -> str:
    """Publish on the message's registered topic, keyed by its subject; returns the ce_id."""
    outgoing = Outgoing.of(message, source=source)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await (await outgoing.send(producer))
    finally:
        await producer.stop()
    return outgoing.event_id


async def publish_submission(bootstrap: str, body: dict[str, Any]) -> str:
    """Validate the body against order.submit.v1 and publish it; returns the ce_id."""
    try:
        submission = model_for("order.submit.v1").model_validate(body)
    except ValueError as exc:
        raise InvalidEventData(str(exc)) from exc
    return await publish(bootstrap, submission, source=f"storefront/{body.get('storefront_id')}")
