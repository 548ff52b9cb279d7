"""The outside world's side of the contract: publish a command to Kafka the way a
storefront, a 3PL or an operator tool does (used by ``conveyor send`` and the CLIs)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from shared.schemas import Envelope, Message, model_for, to_headers, topic_for_message
from shared.schemas.registry import InvalidEventData
from shared.schemas.topics import EXTERNAL


async def publish(bootstrap: str, message: Message, *, source: str) -> str:
    """Publish on the message's registered topic, keyed by its subject; returns the ce_id."""
    envelope = Envelope(
        type=message.TYPE, source=source, data=message.to_json(), subject=message.subject
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_for_message(message.TYPE, EXTERNAL),
            value=envelope.data,
            key=message.subject.encode(),
            headers=to_headers(envelope),
        )
    finally:
        await producer.stop()
    return envelope.id


async def publish_submission(bootstrap: str, body: dict[str, Any]) -> str:
    """Validate the body against order.submit.v1 and publish it; returns the ce_id."""
    try:
        submission = model_for("order.submit.v1").model_validate(body)
    except ValueError as exc:
        raise InvalidEventData(str(exc)) from exc
    return await publish(bootstrap, submission, source=f"storefront/{body.get('storefront_id')}")
