"""CloudEvents binary-mode envelope: headers round trip, and every way a record is poison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.schemas.envelope import (
    REQUIRED_HEADERS,
    BadEnvelope,
    Envelope,
    Headers,
    MissingHeader,
    PoisonMessage,
    from_record,
    to_headers,
)

DATA = b'{"order_id": "o-1"}'


def full_envelope() -> Envelope:
    return Envelope(
        type="order.placed.v1",
        source="conveyor/order",
        data=DATA,
        subject="o-1",
        id="3f1c9c1e-0000-4000-8000-000000000001",
        time=datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        correlation_id="corr-1",
        causation_id="cause-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def headers_without(name: str) -> Headers:
    return [(key, value) for key, value in to_headers(full_envelope()) if key != name]


def replaced(name: str, value: bytes) -> Headers:
    return [(key, value if key == name else old) for key, old in to_headers(full_envelope())]


def test_round_trip_keeps_every_attribute() -> None:
    envelope = full_envelope()
    assert from_record(to_headers(envelope), envelope.data) == envelope


def test_round_trip_of_a_minimal_envelope() -> None:
    envelope = Envelope(type="order.cancel.v1", source="portal", data=b"{}")
    read = from_record(to_headers(envelope), envelope.data)
    assert read == envelope
    assert (read.subject, read.correlation_id, read.causation_id, read.traceparent) == (
        None,
        None,
        None,
        None,
    )


def test_headers_are_the_cloudevents_binary_names() -> None:
    names = [name for name, _ in to_headers(full_envelope())]
    assert names == [
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "content-type",
        "ce_subject",
        "correlation_id",
        "causation_id",
        "traceparent",
    ]
    assert dict(to_headers(full_envelope()))["ce_specversion"] == b"1.0"


def test_from_record_accepts_kafka_header_tuples() -> None:
    envelope = full_envelope()
    assert from_record(tuple(to_headers(envelope)), envelope.data) == envelope


def test_caused_carries_correlation_and_trace() -> None:
    cause = full_envelope()
    effect = cause.caused(type="payment.authorized.v1", source="payment", data=b"{}", subject="o-1")
    assert effect.correlation_id == "corr-1"
    assert effect.causation_id == cause.id
    assert effect.traceparent == cause.traceparent
    assert effect.id != cause.id


def test_first_cause_starts_the_correlation() -> None:
    cause = Envelope(type="order.submit.v1", source="storefront", data=b"{}")
    effect = cause.caused(type="order.placed.v1", source="order", data=b"{}", subject="o-1")
    assert effect.correlation_id == cause.id


@pytest.mark.parametrize("name", REQUIRED_HEADERS)
def test_missing_required_header_is_poison(name: str) -> None:
    with pytest.raises(MissingHeader) as caught:
        from_record(headers_without(name), DATA)
    assert caught.value.reason == "missing_header"
    assert name in caught.value.detail


@pytest.mark.parametrize("name", REQUIRED_HEADERS)
def test_empty_required_header_is_poison(name: str) -> None:
    with pytest.raises(MissingHeader) as caught:
        from_record(replaced(name, b""), DATA)
    assert caught.value.reason == "missing_header"


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("ce_specversion", b"0.3", "ce_specversion"),
        ("content-type", b"application/avro", "content-type"),
        ("ce_time", b"yesterday", "ce_time"),
        ("ce_type", b"\xff\xfe", "ce_type"),
    ],
)
def test_bad_envelope_is_poison(name: str, value: bytes, mentions: str) -> None:
    with pytest.raises(BadEnvelope) as caught:
        from_record(replaced(name, value), DATA)
    assert caught.value.reason == "bad_envelope"
    assert mentions in caught.value.detail


def test_record_without_value_is_poison() -> None:
    with pytest.raises(BadEnvelope) as caught:
        from_record(to_headers(full_envelope()), None)
    assert caught.value.reason == "bad_envelope"


def test_no_headers_at_all_is_poison() -> None:
    with pytest.raises(PoisonMessage) as caught:
        from_record([], DATA)
    assert caught.value.reason == "missing_header"
