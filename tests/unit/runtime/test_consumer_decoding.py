"""How the consumer sorts records: processable, or poison with a reason, and what a
dead letter carries. Pure logic, so no broker: records are built in memory."""

from __future__ import annotations

import inspect
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from shared.runtime.consumer import DLQ_MAX_RECORD_BYTES, Item, dead_letter, decode
from shared.runtime.uow import OutboxRecord
from shared.schemas import Envelope, registry, to_headers
from shared.schemas.envelope import MissingHeader
from tests.factories import submission


def record(
    value: bytes | None, headers: list[tuple[str, bytes]], offset: int = 7
) -> ConsumerRecord:
    return ConsumerRecord(
        topic="order.commands",
        partition=3,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=value,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=len(value or b""),
        headers=tuple(headers),
    )


def submit_headers(type_: str = "order.submit.v1") -> list[tuple[str, bytes]]:
    return to_headers(Envelope(type=type_, source="test", data=b""))


def test_a_valid_record_decodes_to_its_model() -> None:
    cmd = submission("R-1")
    item = decode(record(cmd.to_json(), submit_headers()))
    assert item.poison is None and item.message == cmd


def test_poison_records_carry_reasons() -> None:
    cases = {
        "invalid_data": record(b"{oops", submit_headers()),
        "unknown_type": record(b"{}", submit_headers("order.submit.v9")),
        "missing_header": record(b"{}", []),
        "bad_envelope": record(None, submit_headers()),
    }
    for reason, rec in cases.items():
        item = decode(rec)
        assert item.poison is not None and item.poison.reason == reason, reason


def test_dead_letter_keeps_the_record_and_says_where_from() -> None:
    rec = record(b"garbage", [("x-custom", b"1")])
    letter = dead_letter("order", Item(rec), MissingHeader("header ce_id is missing"))
    headers = dict(letter.headers)
    assert letter.topic == "order.dlq" and letter.payload == b"garbage" and letter.key == b"k"
    assert headers["x-custom"] == b"1"
    assert headers["dlq_reason"] == b"missing_header"
    assert (
        headers["dlq_original_topic"],
        headers["dlq_original_partition"],
        headers["dlq_original_offset"],
    ) == (
        b"order.commands",
        b"3",
        b"7",
    )
    # the id is the record's position: a redelivered poison record maps to the same letter
    assert letter.event_id == dead_letter("order", Item(rec), MissingHeader("x")).event_id


SUBMIT = {"order.submit.v1"}


def test_data_of_a_type_the_service_does_not_handle_is_not_parsed() -> None:
    """It changes nothing here: not even invalid data makes it poison for this reader
    (the services that handle the type dead-letter it)."""
    item = decode(record(b"{oops", submit_headers()), handled={"order.cancel.v1"})
    assert item.ignored and item.poison is None and item.message is None
    assert item.envelope is not None and item.envelope.type == "order.submit.v1"


def test_a_handled_type_is_parsed_and_validated() -> None:
    cmd = submission("R-2")
    assert decode(record(cmd.to_json(), submit_headers()), handled=SUBMIT).message == cmd
    poison = decode(record(b"{oops", submit_headers()), handled=SUBMIT).poison
    assert poison is not None and poison.reason == "invalid_data"


def test_an_unknown_type_is_poison_whether_handled_or_not() -> None:
    item = decode(record(b"{}", submit_headers("order.submit.v9")), handled=SUBMIT)
    assert item.poison is not None and item.poison.reason == "unknown_type"


def test_an_old_version_is_parsed_to_learn_the_type_it_is_read_as(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``order.submit.v0`` read as ``order.submit.v1``: handled, though v0 is not listed."""
    cmd = submission("R-3")
    # every version ever published stays registered, with an upcaster to the next
    monkeypatch.setitem(registry._models, "order.submit.v0", registry.model_for("order.submit.v1"))
    monkeypatch.setitem(
        registry._upcasters, "order.submit.v0", lambda data: ("order.submit.v1", data)
    )
    item = decode(record(cmd.to_json(), submit_headers("order.submit.v0")), handled=SUBMIT)
    assert not item.ignored and item.message == cmd


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"[" * 10_000 + b"]" * 10_000, None, "invalid_data"),  # RecursionError in json
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, None, "invalid_data"),
        (b"\xff\xfe not utf-8", None, "invalid_data"),
        (b"{}", [("ce_id", b"\xff\xfe")], "bad_envelope"),
        (b"{}", [("ce_id", b"nul\x00id")], "bad_envelope"),
        (b"{}", [("ce_time", b"not a time")], "bad_envelope"),
    ],
    ids=["nested-list", "nested-object", "bad-utf8", "bad-utf8-header", "nul-header", "time"],
)
def test_no_record_makes_decoding_raise(
    value: bytes, headers: list[tuple[str, bytes]] | None, reason: str
) -> None:
    replaced = dict(submit_headers())
    replaced.update(dict(headers or []))
    item = decode(record(value, list(replaced.items())), handled={"order.submit.v1"})
    assert item.poison is not None and item.poison.reason == reason


def test_a_record_over_the_size_limit_is_refused_before_parsing() -> None:
    value = submission("BIG").to_json()
    assert decode(record(value, submit_headers()), max_bytes=len(value)).poison is None
    too_large = decode(record(value, submit_headers()), max_bytes=len(value) - 1)
    assert too_large.poison is not None and too_large.poison.reason == "too_large"


def test_any_failure_while_decoding_is_the_records(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*_: object) -> None:
        raise MemoryError

    monkeypatch.setattr("shared.runtime.consumer.parse", out_of_memory)
    item = decode(record(b"{}", submit_headers()))
    assert item.poison is not None and "MemoryError" in item.poison.detail


def test_a_header_name_with_nul_is_dead_lettered_storably() -> None:
    """The outbox keeps header names as PostgreSQL text, which cannot hold NUL: stored
    as it came, the letter failed its insert, and the consumer restarted on it for ever."""
    rec = record(b"{}", [("x-evil\x00name", b"1")])
    letter = dead_letter("order", Item(rec), MissingHeader("header ce_id is missing"))
    assert dict(letter.headers)["x-evil\ufffdname"] == b"1"
    assert all("\x00" not in name for name, _ in letter.headers)


RELAY_LIMIT = inspect.signature(AIOKafkaProducer).parameters["max_request_size"].default
MIB = 1024 * 1024


def fitted(letter: OutboxRecord) -> int:
    return DefaultRecordBatchBuilder.estimate_size_in_bytes(
        letter.key, letter.payload, letter.headers
    )


@pytest.mark.parametrize(
    ("key", "value", "extra", "truncated"),
    [
        (b"k", b"x" * (2 * MIB), [], b"value"),
        (b"k", b"x" * MIB, submit_headers(), b"value"),  # at max_record_bytes, not JSON
        (b"k", b"{}", [("x-padding", b"p" * MIB)], b"headers"),
        (b"k" * MIB, b"{}", [], b"key"),
        (b"k" * MIB, b"x" * MIB, [("x-padding", b"p" * MIB)], b"headers,key,value"),
    ],
    ids=["value-2MiB", "value-at-limit", "headers-1MiB", "key-1MiB", "all-of-them"],
)
def test_a_dead_letter_always_fits_what_the_relay_publishes(
    key: bytes, value: bytes, extra: list[tuple[str, bytes]], truncated: bytes
) -> None:
    """A larger one failed every publish round of the relay (MessageSizeTooLargeError),
    and the service's whole outbox behind it: no event of that service went out again."""
    rec = replace(record(value, extra), key=key)
    letter = dead_letter("order", Item(rec), MissingHeader("header ce_id is missing"))
    assert fitted(letter) <= DLQ_MAX_RECORD_BYTES <= RELAY_LIMIT
    headers = dict(letter.headers)
    assert headers["dlq_truncated"] == truncated
    assert headers["dlq_original_bytes"] == str(len(value)).encode()
    assert headers["dlq_reason"] == b"missing_header"
    assert value.startswith(letter.payload) and key.startswith(letter.key or b"")
    if b"value" in truncated:
        assert len(letter.payload) > DLQ_MAX_RECORD_BYTES - 10_000  # as much as fits


def test_a_dead_letter_that_fits_is_the_record_untouched() -> None:
    value = b"x" * (DLQ_MAX_RECORD_BYTES - 2_000)
    letter = dead_letter("order", Item(record(value, [])), MissingHeader("x"))
    assert letter.payload == value and letter.key == b"k"
    assert "dlq_truncated" not in dict(letter.headers)
