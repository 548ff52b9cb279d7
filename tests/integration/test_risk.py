"""The risk service (faust-streaming) against a real Tansu broker, as a real process.

order.placed.v1 on order.events → risk.assessed.v1 on risk.events, with deterministic ids;
poison → risk.dlq; windows survive a restart (rebuilt by replaying order.events).
No fixed sleeps: every wait is for a condition (readiness, records on a topic).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiokafka import ConsumerRecord

from services.risk.handlers import assessment_id
from shared.schemas.events.order import OrderConfirmed
from tests.integration.harness import ServiceProcess, Stack, data, header
from tests.unit.risk.orders import placed

SIGKILLED = -9


async def start_risk(stack: Stack, **settings: str) -> ServiceProcess:
    """``python -m services.risk`` like any service; ready = consuming (``/health/ready``)."""
    return await stack.start("risk", **settings)


def reason_codes(assessment: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in assessment["reasons"]]


def by_order(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, dict[str, Any]]:
    return {str(data(r)["order_id"]): data(r) for r in records}


async def test_orders_get_the_right_verdicts(stack: Stack) -> None:
    risk = await start_risk(stack, risk_velocity_review="3", risk_velocity_reject="6")
    # poison and an order event risk does not handle: neither may stall a partition
    await stack.publish("order.events", [(b"junk", b"not an envelope", [])])
    confirmed = OrderConfirmed(
        order_id="ord-other",
        order_version=2,
        occurred_at=placed().occurred_at,
        authorization_id="a",
        reservation_id="r",
    )
    ok = placed("cust-ok", bill_to="GB")
    big = placed("cust-big", total_minor=250_000)  # EUR limit 2,000.00
    away = placed("cust-away", ship_to="GB", bill_to="FR")
    burst = [placed("cust-fast") for _ in range(8)]
    ids = await stack.publish_messages(
        "order.events", [confirmed, ok, big, away, *burst], correlation_id="conv-risk"
    )
    cause_of = {
        m.order_id: ce_id for m, ce_id in zip([ok, big, away, *burst], ids[1:], strict=True)
    }

    records = await stack.wait_for_records("risk.events", 11)
    assert len(records) == 11
    verdicts = by_order(records)
    assert verdicts[ok.order_id]["verdict"] == "pass"
    assert verdicts[ok.order_id]["score"] == 0
    assert verdicts[big.order_id]["verdict"] == "review"
    assert reason_codes(verdicts[big.order_id]) == ["amount_over_limit"]
    assert verdicts[away.order_id]["verdict"] == "review"
    assert reason_codes(verdicts[away.order_id]) == ["address_mismatch"]
    # the k-th of the burst processed sees k orders: 1-3 pass, 4-6 review, 7-8 reject
    fast = Counter(verdicts[m.order_id]["verdict"] for m in burst)
    assert fast == {"pass": 3, "review": 3, "reject": 2}

    for record in records:
        order_id = str(data(record)["order_id"])
        cause = cause_of[order_id]
        assert record.key == order_id.encode()
        assert header(record, "ce_type") == "risk.assessed.v1"
        assert header(record, "ce_source") == "conveyor/risk"
        assert header(record, "ce_subject") == order_id
        assert header(record, "ce_id") == assessment_id(cause)
        assert data(record)["assessment_id"] == assessment_id(cause)
        assert header(record, "causation_id") == cause
        assert header(record, "correlation_id") == "conv-risk"

    [dead] = await stack.wait_for_records("risk.dlq", 1)
    assert (dead.key, dead.value) == (b"junk", b"not an envelope")
    assert header(dead, "dlq_reason") == "missing_header"
    assert header(dead, "dlq_original_topic") == "order.events"
    assert await risk.metric("conveyor_events_consumed_total", outcome="ignored") == 1
    assert await risk.metric("conveyor_events_consumed_total", outcome="dead_lettered") == 1
    assert await risk.metric("conveyor_risk_assessments_total") == 11


async def test_the_same_order_placed_twice_is_assessed_under_one_id(stack: Stack) -> None:
    await start_risk(stack)
    order = placed("cust-dup")
    [event_id] = await stack.publish_messages("order.events", [order])
    await stack.publish_messages("order.events", [order], id=event_id)  # redelivery

    first, second = await stack.wait_for_records("risk.events", 2)
    assert header(first, "ce_id") == header(second, "ce_id") == assessment_id(event_id)
    assert first.value == second.value  # counted once, same assessment both times
    assert data(first)["verdict"] == "pass"


async def test_a_rerun_after_a_crash_publishes_the_same_id(stack: Stack) -> None:
    # no offset commit before the kill: the restarted worker assesses the order again
    doomed = await start_risk(stack, risk_commit_interval_s="600")
    order = placed("cust-crash")
    [event_id] = await stack.publish_messages("order.events", [order])
    await stack.wait_for_records("risk.events", 1)
    doomed.kill()
    assert doomed.proc is not None and doomed.proc.returncode == SIGKILLED

    await start_risk(stack)
    first, second = await stack.wait_for_records("risk.events", 2)
    assert header(first, "ce_id") == header(second, "ce_id") == assessment_id(event_id)
    assert data(first)["verdict"] == data(second)["verdict"] == "pass"


async def test_windows_survive_a_restart(stack: Stack) -> None:
    """SIGTERM stops cleanly after committing; the next worker replays order.events up to
    those offsets into its windows, so velocity still counts the earlier orders."""
    first = await start_risk(stack, risk_velocity_review="2", risk_velocity_reject="5")
    earlier = [placed("cust-again") for _ in range(2)]
    await stack.publish_messages("order.events", earlier)
    assert {data(r)["verdict"] for r in await stack.wait_for_records("risk.events", 2)} == {"pass"}
    assert first.stop() == 0

    await start_risk(stack, risk_velocity_review="2", risk_velocity_reject="5")
    third = placed("cust-again")
    await stack.publish_messages("order.events", [third])
    records = await stack.wait_for_records("risk.events", 3)
    assert len(records) == 3  # committed offsets: the first two are not assessed again
    latest = by_order(records)[third.order_id]
    assert latest["verdict"] == "review"
    assert reason_codes(latest) == ["velocity_orders"]
