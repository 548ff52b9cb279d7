"""Record in → record out (services/risk/handlers.py), and the risk settings. No broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from services.risk.app import RiskSettings, broker_urls
from services.risk.domain import RiskState, Thresholds
from services.risk.handlers import (
    ASSESSMENT_NAMESPACE,
    Record,
    assessment_id,
    handle,
)
from shared.schemas import Envelope, Message, from_record, parse, to_headers
from shared.schemas.events.order import OrderConfirmed
from shared.schemas.events.risk import RiskAssessed
from tests.unit.risk.orders import placed

NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


def record(
    message: Message | None = None,
    *,
    envelope: Envelope | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    value: bytes | None = None,
    offset: int = 7,
) -> Record:
    if message is not None:
        envelope = envelope or Envelope(
            type=message.TYPE,
            source="conveyor/order",
            data=message.to_json(),
            subject=message.subject,
        )
        headers, value = to_headers(envelope), envelope.data
    return Record(
        topic="order.events",
        partition=3,
        offset=offset,
        key=b"ord-key",
        value=value,
        headers=headers or [],
    )


def header(headers: list[tuple[str, bytes]], name: str) -> str | None:
    return next((v.decode() for k, v in headers if k == name), None)


def test_order_placed_becomes_risk_assessed_on_risk_events() -> None:
    order = placed("cust-7", ship_to="GB", bill_to="FR")
    cause = Envelope(
        type=order.TYPE,
        source="conveyor/order",
        data=order.to_json(),
        subject=order.order_id,
        correlation_id="conv-1",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    out = handle(RiskState(), record(order, envelope=cause), NOW)

    assert out is not None and out.outcome == "handled"
    assert (out.topic, out.key) == ("risk.events", order.order_id.encode())
    envelope = from_record(out.headers, out.value)
    assert envelope.type == "risk.assessed.v1"
    assert envelope.source == "conveyor/risk"
    assert envelope.subject == order.order_id
    assert envelope.id == str(uuid.uuid5(ASSESSMENT_NAMESPACE, cause.id))
    assert envelope.causation_id == cause.id
    assert envelope.correlation_id == "conv-1"
    assert envelope.traceparent == cause.traceparent
    assert envelope.time == NOW
    assessed = parse(envelope)
    assert isinstance(assessed, RiskAssessed)
    assert assessed.assessment_id == envelope.id
    assert (assessed.order_id, assessed.customer_id) == (order.order_id, "cust-7")
    assert (assessed.verdict, assessed.score) == ("review", 30)
    assert [r.code for r in assessed.reasons] == ["address_mismatch"]
    assert assessed.occurred_at == NOW


def test_without_a_correlation_id_the_order_placed_event_starts_the_conversation() -> None:
    order = placed()
    rec = record(order)
    out = handle(RiskState(), rec, NOW)
    assert out is not None
    cause_id = header(rec.headers, "ce_id")
    assert header(out.headers, "correlation_id") == cause_id
    assert header(out.headers, "causation_id") == cause_id


def test_the_same_order_placed_twice_gives_the_same_record() -> None:
    state = RiskState(Thresholds(velocity_review=1, velocity_reject=2))
    rec = record(placed())
    first = handle(state, rec, NOW)
    second = handle(state, rec, datetime.now(UTC))
    assert first is not None and second is not None
    assert (second.key, second.value, second.headers) == (first.key, first.value, first.headers)


def test_assessment_ids_are_deterministic_and_distinct() -> None:
    assert assessment_id("a") == assessment_id("a")
    assert assessment_id("a") != assessment_id("b")
    assert uuid.UUID(assessment_id("a")).version == 5


def test_other_order_events_are_ignored() -> None:
    confirmed = OrderConfirmed(
        order_id="ord-1",
        order_version=2,
        occurred_at=NOW,
        authorization_id="auth-1",
        reservation_id="res-1",
    )
    assert handle(RiskState(), record(confirmed), NOW) is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: record(headers=[("ce_id", b"x")], value=b"{}"), "missing_header"),
        (
            lambda: record(
                envelope=Envelope(type="order.placed.v1", source="t", data=b'{"order_id": 1}'),
                message=placed(),
            ),
            "invalid_data",
        ),
        (
            lambda: record(
                envelope=Envelope(type="order.exploded.v1", source="t", data=b"{}"),
                message=placed(),
            ),
            "unknown_type",
        ),
        (
            lambda: record(
                headers=to_headers(Envelope(type="order.placed.v1", source="t", data=b"")),
                value=None,
            ),
            "bad_envelope",
        ),
    ],
)
def test_poison_is_dead_lettered_with_the_original_record(
    make: Callable[[], Record], reason: str
) -> None:
    rec = make()
    out = handle(RiskState(), rec, NOW)
    assert out is not None and out.outcome == "dead_lettered"
    assert out.topic == "risk.dlq"
    assert (out.key, out.value) == (rec.key, rec.value)
    assert out.headers[: len(rec.headers)] == rec.headers
    assert header(out.headers, "dlq_reason") == reason
    assert header(out.headers, "dlq_service") == "risk"
    assert header(out.headers, "dlq_original_topic") == "order.events"
    assert header(out.headers, "dlq_original_partition") == "3"
    assert header(out.headers, "dlq_original_offset") == "7"
    assert header(out.headers, "dlq_failed_at") == NOW.isoformat()


def test_records_accept_faust_style_mapping_headers() -> None:
    rec = Record.of(topic="t", partition=0, offset=1, key=None, value=b"v", headers={"ce_id": b"1"})
    assert rec.headers == [("ce_id", b"1")]
    assert (
        Record.of(topic="t", partition=0, offset=1, key=None, value=None, headers=None).headers
        == []
    )


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_RISK_WINDOW_S", "600")
    monkeypatch.setenv("CONVEYOR_RISK_VELOCITY_REVIEW", "2")
    monkeypatch.setenv("CONVEYOR_RISK_VELOCITY_REJECT", "4")
    monkeypatch.setenv("CONVEYOR_RISK_ORDER_LIMITS_MINOR", json.dumps({"EUR": 999}))
    thresholds = RiskSettings().thresholds()
    assert thresholds.window.total_seconds() == 600
    assert (thresholds.velocity_review, thresholds.velocity_reject) == (2, 4)
    assert thresholds.order_limits_minor == {"EUR": 999}
    assert thresholds.spend_limits_minor["EUR"] == 500_000  # the default


def test_broker_urls() -> None:
    assert broker_urls("a:1, b:2") == ["kafka://a:1", "kafka://b:2"]
