"""Delivery guarantees: never lose an order, never apply one twice — with real crashes."""

from __future__ import annotations

from datetime import UTC, datetime

from services.order.domain import order_id_for
from tests.factories import submission
from tests.integration.harness import Stack, data, eventually, header

SIGKILLED = -9


async def placed_events(stack: Stack) -> list[dict[str, object]]:
    return [data(r) for r in await stack.read_topic("order.events")]


async def test_duplicate_delivery_has_one_effect(stack: Stack) -> None:
    order = await stack.start("order")
    cmd = submission("DUP-1")
    # the same record delivered three times (same ce_id), then resubmitted (new ce_id)
    [event_id] = await stack.publish_messages("order.commands", [cmd])
    await stack.publish_messages("order.commands", [cmd, cmd], id=event_id)
    await stack.publish_messages("order.commands", [cmd])

    async def all_consumed() -> bool:
        return await order.metric("conveyor_events_consumed_total", topic="order.commands") == 4

    await eventually(all_consumed, what="4 records consumed")
    assert await order.metric("conveyor_events_consumed_total", outcome="duplicate") == 2
    await stack.wait_for_records("order.events", 1)
    events = await placed_events(stack)
    assert [e["order_id"] for e in events] == [order_id_for("test-shop", "DUP-1")]
    rows = await stack.query("SELECT count(*) AS n FROM order_service.orders")
    assert rows[0]["n"] == 1


async def test_a_conflicting_resubmission_is_rejected_not_applied(stack: Stack) -> None:
    """The same reference with another body is order.rejected (reference_conflict), as
    HTTP answers 409; only a new submitted_at is still a plain resubmission."""
    order = await stack.start("order")
    first = submission("CONFLICT-1", submitted_at=datetime(2026, 1, 1, tzinfo=UTC))
    retried = submission("CONFLICT-1", submitted_at=datetime(2026, 1, 2, tzinfo=UTC))
    negative = [{"sku": "MUG-BLUE", "quantity": -2, "unit_price_minor": 1250}]
    changed = submission("CONFLICT-1", lines=negative)
    await stack.publish_messages("order.commands", [first, retried])
    [conflicting] = await stack.publish_messages("order.commands", [changed])

    async def all_consumed() -> bool:
        return await order.metric("conveyor_events_consumed_total", outcome="handled") == 3

    await eventually(all_consumed, what="3 submissions handled")
    placed, refused = (data(r) for r in await stack.wait_for_records("order.events", 2))
    order_id = order_id_for("test-shop", "CONFLICT-1")
    assert (placed["order_id"], placed["order_version"]) == (order_id, 1)
    assert (refused["order_id"], refused["order_version"]) == (order_id, 1)  # not newer
    assert [r["code"] for r in refused["reasons"]] == ["reference_conflict"]
    assert refused["storefront_reference"] == "CONFLICT-1"
    [record] = [r for r in await stack.read_topic("order.events") if data(r) == refused]
    assert (header(record, "ce_type"), header(record, "causation_id")) == (
        "order.rejected.v1",
        conflicting,
    )
    rows = await stack.query("SELECT status, submission FROM order_service.orders")
    assert [r["status"] for r in rows] == ["placed"]
    assert '"quantity": -2' not in rows[0]["submission"]
    refusals = await stack.query("SELECT event_id, code FROM order_service.refused_requests")
    assert [(r["event_id"], r["code"]) for r in refusals] == [(conflicting, "reference_conflict")]


async def test_killed_after_db_commit_before_offset_commit(stack: Stack) -> None:
    doomed = stack.service("order", failpoints="consumer.after_db_commit").start()
    await doomed.ready()
    await stack.publish_messages("order.commands", [submission("CRASH-1")])
    assert await doomed.exited() == SIGKILLED
    # the transaction committed: the order and its outgoing event are in the database
    rows = await stack.query("SELECT status FROM order_service.orders")
    assert [r["status"] for r in rows] == ["placed"]

    restarted = await stack.start("order")
    await stack.wait_for_records("order.events", 1)

    async def redelivered() -> bool:
        return await restarted.metric("conveyor_events_consumed_total", outcome="duplicate") == 1

    await eventually(redelivered, what="the uncommitted record to be redelivered and skipped")
    events = await placed_events(stack)
    assert [e["order_id"] for e in events] == [order_id_for("test-shop", "CRASH-1")]


async def test_relay_killed_before_publishing_publishes_once(stack: Stack) -> None:
    doomed = stack.service("order", failpoints="relay.before_publish").start()
    await doomed.ready()
    await stack.publish_messages("order.commands", [submission("RELAY-1")])
    assert await doomed.exited() == SIGKILLED
    unsent = await stack.query("SELECT event_id FROM order_service.outbox WHERE sent_at IS NULL")
    assert len(unsent) == 1
    assert await stack.read_topic("order.events") == []

    await stack.start("order")
    [record] = await stack.wait_for_records("order.events", 1)
    assert header(record, "ce_id") == unsent[0]["event_id"]

    async def marked_sent() -> bool:
        rows = await stack.query("SELECT 1 FROM order_service.outbox WHERE sent_at IS NULL")
        return not rows

    await eventually(marked_sent, what="the outbox row marked sent")
    assert len(await stack.read_topic("order.events")) == 1


async def test_relay_killed_after_publishing_is_deduplicated_downstream(stack: Stack) -> None:
    """At-least-once between relay and Kafka: the repeat carries the same ce_id, and the
    consumer's inbox applies it once."""
    doomed = stack.service("order", failpoints="relay.after_publish").start()
    await doomed.ready()
    await stack.publish_messages("order.commands", [submission("RELAY-2")])
    assert await doomed.exited() == SIGKILLED
    await stack.start("order")
    first, second = await stack.wait_for_records("order.events", 2)
    assert header(first, "ce_id") == header(second, "ce_id")

    portal = await stack.start("portal")

    async def both_consumed() -> bool:
        return await portal.metric("conveyor_events_consumed_total", topic="order.events") == 2

    await eventually(both_consumed, what="the portal to consume both copies")
    assert await portal.metric("conveyor_events_consumed_total", outcome="duplicate") == 1
    timeline = await stack.query("SELECT version FROM portal_service.order_timeline")
    assert [r["version"] for r in timeline] == [1]
