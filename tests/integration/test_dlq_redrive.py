"""`conveyor dlq show|redrive`: a dead letter goes back to its topic once its cause is
gone, is applied there, and is never re-driven twice."""

from __future__ import annotations

from services.order.domain import order_id_for
from shared.runtime.redrive import pending
from shared.runtime.topics import ensure_topics
from tests.factories import authorized, submission
from tests.integration.harness import Stack, conveyor, eventually, header


async def test_a_verdict_dead_lettered_for_a_missing_order_is_redriven_once_it_exists(
    stack: Stack,
) -> None:
    await stack.start("order", max_attempts="1")
    order_id = order_id_for("test-shop", "LATE-1")
    # the verdict overtakes its order (a bug upstream, say): the order service cannot
    # apply it and dead-letters it
    [verdict_id] = await stack.publish_messages("payment.events", [authorized(order_id)])
    [dead] = await stack.wait_for_records("order.dlq", 1)
    assert header(dead, "dlq_reason") == "handler_failed"

    [letter] = await pending(stack.bootstrap, "order")
    assert (letter.original_topic, letter.event_type) == ("payment.events", "payment.authorized.v1")
    assert "no order" in letter.detail
    shown = await conveyor(stack.bootstrap, "dlq", "show", "order")
    assert "handler_failed" in shown and "payment.events" in shown

    # the cause goes away: the order arrives; then the operator re-drives
    await stack.publish_messages("order.commands", [submission("LATE-1")])

    async def placed() -> bool:
        rows = await stack.query("SELECT 1 FROM order_service.orders WHERE order_id = $1", order_id)
        return bool(rows)

    await eventually(placed, what="the order placed")
    output = await conveyor(stack.bootstrap, "dlq", "redrive", "order", "--yes")
    assert "re-drove 1 records" in output

    async def payment_recorded() -> str | None:
        rows = await stack.query(
            "SELECT payment FROM order_service.orders WHERE order_id = $1", order_id
        )
        return rows[0]["payment"] if rows and rows[0]["payment"] == "authorized" else None

    await eventually(payment_recorded, what="the re-driven verdict applied")
    redriven = [r for r in await stack.read_topic("payment.events") if r.offset > 0]
    assert [header(r, "ce_id") for r in redriven] == [verdict_id], "same record, same ce_id"
    assert not any(k.startswith("dlq_") for k, _ in redriven[0].headers or ())

    # progress is kept: nothing is waiting, and a second re-drive sends nothing
    assert await pending(stack.bootstrap, "order") == []
    assert "nothing waiting" in await conveyor(stack.bootstrap, "dlq", "redrive", "order", "--yes")
    assert len(await stack.read_topic("order.dlq")) == 1, "applied, so not dead-lettered again"


async def test_a_letter_cut_to_fit_is_set_aside_not_redriven(stack: Stack) -> None:
    """Only part of the original is in it: re-publishing it would only fail again."""
    await ensure_topics(stack.bootstrap)
    headers = [("ce_type", b"order.submit.v1"), ("dlq_reason", b"too_large"),
               ("dlq_original_topic", b"order.commands"), ("dlq_truncated", b"value"),
               ("dlq_original_bytes", b"2000000")]  # fmt: skip
    await stack.publish("order.dlq", [(b"k", b"x" * 100, headers)])
    assert "too large to keep whole" in await conveyor(stack.bootstrap, "dlq", "show", "order")

    output = await conveyor(stack.bootstrap, "dlq", "redrive", "order", "--yes")
    assert "re-drove 0 records" in output and "set aside 1 records" in output
    assert await pending(stack.bootstrap, "order") == []
    assert await stack.read_topic("order.commands") == [], "nothing re-published"
