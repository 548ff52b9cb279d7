"""How the consumer sorts records: processable, or poison with a reason, and what a
dead letter carries. Pure logic, so no broker: records are built in memory."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from shared.runtime.consumer import Item, dead_letter, decode
from shared.schemas import Envelope, to_headers
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
