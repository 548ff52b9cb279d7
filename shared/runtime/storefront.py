"""A storefront's side of the contract: publish an order submission to Kafka."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from shared.schemas import Envelope, model_for, to_headers
from shared.schemas.registry import InvalidEventData


async def publish_submission(bootstrap: str, body: dict[str, Any]) -> str:
    """Validate the body against order.submit.v1 and publish it; returns the ce_id."""
    model = model_for("order.submit.v1")
    try:
        submission = model.model_validate(body)
    except ValueError as exc:
        raise InvalidEventData(str(exc)) from exc
    envelope = Envelope(
        type=model.TYPE,
        source=f"storefront/{body.get('storefront_id', 'unknown')}",
        data=submission.to_json(),
        subject=submission.subject,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            "order.commands",
            value=envelope.data,
            key=submission.subject.encode(),
            headers=to_headers(envelope),
        )
    finally:
        await producer.stop()
    return envelope.id
