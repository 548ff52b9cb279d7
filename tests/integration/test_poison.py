"""Poison input goes to the dead-letter topic with its reason; the partition moves on."""

from __future__ import annotations

import json

from services.order.domain import order_id_for
from shared.schemas import Envelope, to_headers
from tests.factories import submission, submission_body
from tests.integration.harness import Stack, data, eventually, header

KEY = b"same-partition"  # every record on one partition: poison must not stall it


def envelope_record(type_: str, body: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return KEY, body, to_headers(Envelope(type=type_, source="test/storefront", data=body))


def valid(reference: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return envelope_record("order.submit.v1", submission(reference).to_json())


async def test_each_poison_message_is_dead_lettered_with_its_reason(stack: Stack) -> None:
    order = await stack.start("order", max_attempts="3")
    without_id = [(k, v) for k, v in valid("NOPE")[2] if k != "ce_id"]
    missing_total = submission_body("BAD-SCHEMA")
    del missing_total["total_minor"]
    # PostgreSQL cannot store NUL in text: the contract refuses it before any handler
    unstorable = json.dumps(submission_body("NUL\x00REF")).encode()
    records = [
        valid("OK-1"),
        (KEY, b"{not json", valid("X")[2]),
        envelope_record("order.submit.v1", json.dumps(missing_total).encode()),
        envelope_record("order.teleport.v1", b"{}"),
        envelope_record("order.submit.v9", submission("V9").to_json()),
        (KEY, submission("NOID").to_json(), without_id),
        envelope_record("order.submit.v1", unstorable),
        valid("OK-2"),
    ]
    await stack.publish("order.commands", records)

    dead = await stack.wait_for_records("order.dlq", 6)
    reasons = [header(r, "dlq_reason") for r in dead]
    assert reasons == [
        "invalid_data",
        "invalid_data",
        "unknown_type",
        "unknown_type",
        "missing_header",
        "invalid_data",
    ]
    assert [int(header(r, "dlq_original_offset") or -1) for r in dead] == [1, 2, 3, 4, 5, 6]
    assert {header(r, "dlq_original_topic") for r in dead} == {"order.commands"}
    assert {header(r, "dlq_service") for r in dead} == {"order"}
    assert [r.value for r in dead] == [value for _, value, _ in records[1:7]]
    assert all(header(r, "dlq_detail") for r in dead)

    placed = await stack.wait_for_records("order.events", 2)
    assert {data(r)["order_id"] for r in placed} == {  # keyed by order: no order across keys
        order_id_for("test-shop", "OK-1"),
        order_id_for("test-shop", "OK-2"),
    }
    # every poison record was refused before a handler ran: nothing was retried
    assert await order.metric("conveyor_retries_total", kind="handler") == 0
    assert await order.metric("conveyor_events_consumed_total", outcome="handled") == 2
    assert await order.metric("conveyor_events_consumed_total", outcome="dead_lettered") == 6
    assert order.proc is not None and order.proc.poll() is None, (
        "bad input must not kill the service"
    )


async def test_dead_lettering_survives_redelivery_without_duplicates(stack: Stack) -> None:
    """A crash after the poison batch committed re-reads it; it is not dead-lettered twice."""
    doomed = stack.service("order", failpoints="consumer.after_db_commit").start()
    await doomed.ready()
    await stack.publish("order.commands", [(KEY, b"garbage", [])])
    await doomed.exited()
    restarted = await stack.start("order")

    async def redelivered() -> bool:
        return await restarted.metric("conveyor_events_consumed_total", outcome="duplicate") == 1

    await eventually(redelivered, what="the poison record to be redelivered and recognised")
    assert await restarted.metric("conveyor_events_consumed_total", outcome="dead_lettered") == 0
    [dead] = await stack.wait_for_records("order.dlq", 1)
    assert header(dead, "dlq_reason") == "missing_header"
    assert len(await stack.read_topic("order.dlq")) == 1
