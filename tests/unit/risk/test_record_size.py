"""Record size limits in the risk handler (services/risk/handlers.py): a value above
max_record_bytes is refused unparsed, and every dead letter fits the producer's limit
(faust's producer refuses a larger one, and app.publish would retry it for ever)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from services.risk.domain import RiskState
from services.risk.handlers import MAX_RECORD_BYTES, Outgoing, Record, handle
from shared.runtime.settings import Settings
from shared.schemas import Envelope, to_headers
from tests.unit.risk.orders import placed

NOW = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
FAUST_PRODUCER_LIMIT = 1_000_000  # faust's producer_max_request_size default


def headers_for(type_: str) -> list[tuple[str, bytes]]:
    return to_headers(Envelope(type=type_, source="conveyor/order", data=b""))


def record(value: bytes | None, headers: list[tuple[str, bytes]], key: bytes = b"k") -> Record:
    return Record(
        topic="order.events", partition=2, offset=41, key=key, value=value, headers=headers
    )


def header(out: Outgoing, name: str) -> str | None:
    return next((v.decode() for k, v in out.headers if k == name), None)


def size(out: Outgoing) -> int:
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(out.key, out.value, out.headers)


def test_the_limit_is_the_runtime_setting() -> None:
    assert Settings.model_fields["max_record_bytes"].default == MAX_RECORD_BYTES


def test_a_value_above_the_limit_is_refused_unparsed_in_a_dead_letter_that_fits() -> None:
    value = b'{"pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'

    out = handle(RiskState(), record(value, headers_for("order.placed.v1")), NOW)

    assert out is not None and out.outcome == "dead_lettered"
    assert out.topic == "risk.dlq"
    assert out.problem is not None and out.problem.reason == "too_large"
    assert header(out, "dlq_reason") == "too_large"
    assert header(out, "dlq_original_bytes") == str(len(value))
    assert header(out, "dlq_truncated") == "value"
    assert out.value is not None and value.startswith(out.value)
    assert size(out) <= FAUST_PRODUCER_LIMIT


def test_a_type_it_ignores_is_refused_too_when_too_large() -> None:
    value = b"x" * (MAX_RECORD_BYTES + 1)

    out = handle(RiskState(), record(value, headers_for("order.confirmed.v1")), NOW)

    assert out is not None and out.problem is not None and out.problem.reason == "too_large"


def test_the_limit_is_a_parameter() -> None:
    order = placed("cust-1")
    data = order.to_json()
    envelope = Envelope(type=order.TYPE, source="conveyor/order", data=data)
    small = record(data, to_headers(envelope))

    refused = handle(RiskState(), small, NOW, max_bytes=len(data) - 1)
    assessed = handle(RiskState(), small, NOW, max_bytes=len(data))

    assert refused is not None and refused.outcome == "dead_lettered"
    assert assessed is not None and assessed.outcome == "handled"


def test_a_value_at_the_limit_is_parsed_and_its_dead_letter_cut_to_fit() -> None:
    value = b"x" * MAX_RECORD_BYTES  # not JSON: invalid order.placed data

    out = handle(RiskState(), record(value, headers_for("order.placed.v1")), NOW)

    assert out is not None and out.problem is not None
    assert out.problem.reason == "invalid_data"
    assert header(out, "dlq_truncated") == "value"
    assert size(out) <= FAUST_PRODUCER_LIMIT


def test_oversized_headers_and_key_are_cut_from_the_dead_letter() -> None:
    headers = [*headers_for("order.placed.v1"), ("x-padding", b"p" * (MAX_RECORD_BYTES + 1))]

    out = handle(RiskState(), record(b"{}", headers, key=b"k" * 5000), NOW)

    assert out is not None and out.problem is not None
    assert out.problem.reason == "invalid_data"
    assert header(out, "dlq_truncated") == "headers,key"
    assert header(out, "x-padding") is None
    assert out.key == b"k" * 1024
    assert out.value == b"{}"
    assert size(out) <= FAUST_PRODUCER_LIMIT


def test_a_small_dead_letter_is_the_record_untouched() -> None:
    headers = headers_for("order.placed.v1")

    out = handle(RiskState(), record(b"{}", headers), NOW)

    assert out is not None and out.outcome == "dead_lettered"
    assert (out.key, out.value) == (b"k", b"{}")
    assert out.headers[: len(headers)] == headers
    assert header(out, "dlq_truncated") is None


def test_a_null_value_stays_null_in_its_dead_letter() -> None:
    out = handle(RiskState(), record(None, headers_for("order.placed.v1")), NOW)

    assert out is not None and out.outcome == "dead_lettered"
    assert out.value is None
