"""CloudEvents 1.0 envelope in Kafka *binary* content mode.

Attributes travel as ``ce_*`` headers, the event data is the record value (JSON).
Conveyor adds ``traceparent`` (W3C trace context), ``correlation_id`` (the whole
conversation, usually the order) and ``causation_id`` (the event that caused this one).
``ce_id`` is the idempotency key every consumer deduplicates on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]

REQUIRED_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time")


class PoisonMessage(Exception):
    """A record no handler can ever process; it belongs in the dead-letter topic.

    ``reason`` is a short machine-readable code (``missing_header``, ``invalid_data``…),
    ``detail`` the human explanation.
    """

    reason = "poison"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.reason}: {detail}")
        self.detail = detail


class MissingHeader(PoisonMessage):
    reason = "missing_header"


class BadEnvelope(PoisonMessage):
    reason = "bad_envelope"


@dataclass(frozen=True)
class Envelope:
    """One event or command as it travels: attributes plus raw JSON data."""

    type: str
    source: str
    data: bytes
    subject: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None

    def caused(self, *, type: str, source: str, data: bytes, subject: str | None) -> Envelope:
        """A new envelope caused by this one: same correlation and trace, causation = us."""
        return Envelope(
            type=type,
            source=source,
            data=data,
            subject=subject,
            correlation_id=self.correlation_id or self.id,
            causation_id=self.id,
            traceparent=self.traceparent,
        )

    def with_id(self, event_id: str) -> Envelope:
        return replace(self, id=event_id)


def to_headers(envelope: Envelope) -> Headers:
    headers: Headers = [
        ("ce_id", envelope.id.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_time", envelope.time.isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    optional = {
        "ce_subject": envelope.subject,
        "correlation_id": envelope.correlation_id,
        "causation_id": envelope.causation_id,
        "traceparent": envelope.traceparent,
    }
    headers.extend((name, value.encode()) for name, value in optional.items() if value)
    return headers


def from_record(headers: Headers | tuple[tuple[str, bytes], ...], value: bytes | None) -> Envelope:
    """Read an envelope from a Kafka record; raise :class:`PoisonMessage` if it is not one."""
    found: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            found[name] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise BadEnvelope(f"header {name} is not UTF-8") from exc
        if "\x00" in found[name]:  # PostgreSQL text cannot hold it (ids go in the inbox)
            raise BadEnvelope(f"header {name} holds a NUL character")
    for name in REQUIRED_HEADERS:
        if not found.get(name):
            raise MissingHeader(f"header {name} is missing")
    if found["ce_specversion"] != SPEC_VERSION:
        raise BadEnvelope(f"unsupported ce_specversion {found['ce_specversion']!r}")
    content_type = found.get("content-type", CONTENT_TYPE)
    if not content_type.startswith(CONTENT_TYPE):
        raise BadEnvelope(f"unsupported content-type {content_type!r}")
    try:
        time = datetime.fromisoformat(found["ce_time"])
    except ValueError as exc:
        raise BadEnvelope(f"ce_time {found['ce_time']!r} is not RFC 3339") from exc
    if value is None:
        raise BadEnvelope("record has no value")
    return Envelope(
        id=found["ce_id"],
        type=found["ce_type"],
        source=found["ce_source"],
        time=time,
        subject=found.get("ce_subject"),
        correlation_id=found.get("correlation_id"),
        causation_id=found.get("causation_id"),
        traceparent=found.get("traceparent"),
        data=value,
    )
