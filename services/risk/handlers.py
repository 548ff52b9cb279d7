"""One ``order.events`` record in → what to publish out. No I/O: app.py does the sending.

- ``order.placed.v1`` → ``risk.assessed.v1`` on ``risk.events`` (key = order id) with a
  deterministic ``ce_id`` (uuid5 of the causing ``ce_id``), ``causation_id`` = that
  ``ce_id``, the correlation id and trace context carried over;
- any other registered type → ignored;
- a record that is not an envelope, an unknown type, or invalid ``order.placed`` data →
  the original record plus ``dlq_*`` headers on ``risk.dlq`` (like the shared runtime);
- a value larger than ``max_record_bytes`` → refused before it is parsed (``too_large``).

A dead letter is cut to fit the producer's request limit as the shared runtime's are
(``dlq_truncated``): one that does not fit would be refused on every retry, for ever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from services.risk.domain import Assessment, OrderFacts, RiskState
from shared.runtime.consumer import RecordTooLarge, _fitted
from shared.runtime.settings import Settings
from shared.schemas import (
    Envelope,
    PoisonMessage,
    dlq_topic,
    from_record,
    model_for,
    parse,
    to_headers,
    topic_for_message,
)
from shared.schemas.events.order import OrderPlaced
from shared.schemas.events.risk import RiskAssessed

SERVICE = "risk"
SOURCE = f"conveyor/{SERVICE}"
CONSUMES = "order.events"
HANDLED = frozenset({OrderPlaced.TYPE})
PRODUCES = topic_for_message(RiskAssessed.TYPE, SERVICE)  # "risk.events"
DEAD_LETTERS = dlq_topic(SERVICE)

#: the runtime's default ``max_record_bytes``: a larger value is refused unparsed
MAX_RECORD_BYTES: int = Settings.model_fields["max_record_bytes"].default

#: namespace of assessment ids: uuid5(namespace, ce_id of the order.placed event)
ASSESSMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:conveyor:risk.assessed.v1")

RawHeaders = Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True)
class Record:
    """The parts of a consumed Kafka record the handler needs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def of(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: RawHeaders,
    ) -> Record:
        items = headers.items() if isinstance(headers, Mapping) else (headers or ())
        return cls(topic, partition, offset, key, value, [(k, v) for k, v in items])


@dataclass(frozen=True)
class Outgoing:
    """A record to publish, and what it means for the consumed one."""

    outcome: Literal["handled", "dead_lettered"]
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    envelope: Envelope | None = None
    assessment: Assessment | None = None
    problem: PoisonMessage | None = None


def assessment_id(cause_id: str) -> str:
    """Deterministic: a re-run after a crash publishes the same ``ce_id`` again."""
    return str(uuid.uuid5(ASSESSMENT_NAMESPACE, cause_id))


def facts_from(order: OrderPlaced) -> OrderFacts:
    return OrderFacts(
        order_id=order.order_id,
        customer_id=order.customer.customer_id,
        occurred_at=order.occurred_at,
        total_minor=order.amounts.total_minor,
        currency=order.currency,
        shipping_country=order.shipping_address.country,
        billing_country=order.billing_address.country if order.billing_address else None,
    )


def read_order_placed(record: Record) -> tuple[Envelope, OrderPlaced] | None:
    """The envelope and order of an ``order.placed`` record; None for any other type.

    Raises :class:`PoisonMessage` for a record that is not an envelope, has an unknown
    type, or carries invalid ``order.placed`` data.
    """
    envelope = from_record(record.headers, record.value)
    model_for(envelope.type)  # unknown types are poison, as in the shared runtime
    if envelope.type not in HANDLED:
        return None
    message = parse(envelope)
    assert isinstance(message, OrderPlaced), f"{envelope.type} parsed to {type(message)}"
    return envelope, message


def handle(
    state: RiskState,
    record: Record,
    now: datetime,
    max_bytes: int | None = MAX_RECORD_BYTES,
) -> Outgoing | None:
    """Assess an ``order.placed`` record; None when the record is not for us.

    ``max_bytes``: a larger value is dead-lettered (``too_large``) before it is parsed,
    as the shared runtime's consumer does; None: no limit."""
    size = len(record.value or b"")
    if max_bytes is not None and size > max_bytes:
        return dead_letter(record, RecordTooLarge(f"value of {size} bytes, limit {max_bytes}"), now)
    try:
        found = read_order_placed(record)
    except PoisonMessage as problem:
        return dead_letter(record, problem, now)
    if found is None:
        return None
    cause, order = found
    assessment = state.assess(facts_from(order), now)
    return assessed(cause, assessment)


def assessed(cause: Envelope, assessment: Assessment) -> Outgoing:
    event_id = assessment_id(cause.id)
    event = RiskAssessed(
        order_id=assessment.order_id,
        assessment_id=event_id,
        customer_id=assessment.customer_id,
        verdict=assessment.verdict,
        score=assessment.score,
        reasons=list(assessment.reasons),
        occurred_at=assessment.assessed_at,
    )
    data = event.to_json()
    envelope = replace(
        cause.caused(type=event.TYPE, source=SOURCE, data=data, subject=event.subject),
        id=event_id,
        time=assessment.assessed_at,
    )
    return Outgoing(
        outcome="handled",
        topic=PRODUCES,
        key=event.subject.encode(),
        value=data,
        headers=to_headers(envelope),
        envelope=envelope,
        assessment=assessment,
    )


def dead_letter(record: Record, problem: PoisonMessage, now: datetime) -> Outgoing:
    """The original record plus ``dlq_*`` headers, as the shared runtime writes them: cut
    to fit the producer's request limit, saying what was cut (``dlq_truncated``)."""
    dlq = [
        ("dlq_reason", problem.reason.encode()),
        ("dlq_detail", problem.detail[:2000].encode()),
        ("dlq_service", SERVICE.encode()),
        ("dlq_original_topic", record.topic.encode()),
        ("dlq_original_partition", str(record.partition).encode()),
        ("dlq_original_offset", str(record.offset).encode()),
        ("dlq_failed_at", now.astimezone(UTC).isoformat().encode()),
    ]
    key, headers, value = _fitted(record.key, record.headers, dlq, record.value or b"")
    return Outgoing(
        outcome="dead_lettered",
        topic=DEAD_LETTERS,
        key=key,
        value=None if record.value is None else value,
        headers=headers,
        problem=problem,
    )
