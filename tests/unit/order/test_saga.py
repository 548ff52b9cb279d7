"""The confirmation saga: three verdicts, any order of arrival, one decision."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from services.order.domain import Order, OrderStatus, Refused, cancel, decide_review, record
from shared.schemas.common import Money
from shared.schemas.events.inventory import (
    Allocation,
    BackorderedLine,
    InventoryReservationFailed,
    InventoryReserved,
    SkuShortage,
)
from shared.schemas.events.order import CancelOrder, DecideReview
from shared.schemas.events.payment import PaymentAuthorized, PaymentDeclined
from shared.schemas.events.risk import RiskAssessed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AMOUNT = Money(amount_minor=100, currency="EUR")


def placed() -> Order:
    return Order(order_id="o-1", status=OrderStatus.PLACED, version=1, customer_id="c-1")


def authorized() -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id="o-1", payment_id="p", amount=AMOUNT, occurred_at=NOW,
        authorization_id="auth-1", gateway_reference="g",
    )  # fmt: skip


def declined() -> PaymentDeclined:
    return PaymentDeclined(
        order_id="o-1", payment_id="p", amount=AMOUNT, occurred_at=NOW, code="declined"
    )


def reserved(backordered: list[BackorderedLine] | None = None) -> InventoryReserved:
    allocation = Allocation(line_id="1", sku="S", warehouse_id="w", quantity=1)
    return InventoryReserved(
        order_id="o-1", reservation_id="res-1", occurred_at=NOW, allocations=[allocation],
        backordered=backordered or [],
    )  # fmt: skip


def out_of_stock() -> InventoryReservationFailed:
    shortage = SkuShortage(sku="S", requested=1, available=0, code="out_of_stock")
    return InventoryReservationFailed(order_id="o-1", shortages=[shortage], occurred_at=NOW)


def risk(verdict: str) -> RiskAssessed:
    return RiskAssessed(
        order_id="o-1", assessment_id="r", verdict=verdict, score=0, occurred_at=NOW
    )  # type: ignore[arg-type]


def run(order: Order, facts: list) -> tuple[Order, list[str]]:  # type: ignore[type-arg]
    emitted = []
    for fact in facts:
        outcome = record(order, fact, NOW)
        order = outcome.order
        if outcome.event is not None:
            emitted.append(outcome.event.TYPE)
    return order, emitted


@pytest.mark.parametrize(
    "facts", list(itertools.permutations([authorized(), reserved(), risk("pass")]))
)
def test_all_positive_in_any_order_confirms_once(facts: tuple) -> None:  # type: ignore[type-arg]
    order, emitted = run(placed(), list(facts))
    assert emitted == ["order.confirmed.v1"]
    assert (order.status, order.version) == (OrderStatus.CONFIRMED, 2)
    assert (order.authorization_id, order.reservation_id) == ("auth-1", "res-1")


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (declined(), "payment_declined"),
        (out_of_stock(), "out_of_stock"),
        (risk("reject"), "risk_rejected"),
    ],
)
@pytest.mark.parametrize("first", [True, False], ids=["failure-first", "failure-last"])
def test_one_negative_verdict_cancels_whichever_arrives_first(failure, code, first) -> None:  # type: ignore[no-untyped-def]
    others = [f for f in (authorized(), reserved(), risk("pass")) if type(f) is not type(failure)]
    facts = [failure, *others] if first else [*others[:1], failure, *others[1:]]
    order = placed()
    outcomes = []
    for fact in facts:
        outcome = record(order, fact, NOW)
        order = outcome.order
        outcomes.append(outcome)
    events = [o.event for o in outcomes if o.event is not None]
    assert [e.TYPE for e in events] == ["order.cancelled.v1"]
    assert [r.code for r in events[0].reasons] == [code]  # type: ignore[attr-defined]
    assert order.status == OrderStatus.CANCELLED


def test_backordered_lines_confirm_with_their_date() -> None:
    line = BackorderedLine(line_id="1", sku="S", quantity=2, expected_restock_date=date(2026, 2, 1))
    order, emitted = run(placed(), [authorized(), reserved([line]), risk("pass")])
    assert emitted == ["order.confirmed.v1"]
    assert order.backordered_skus == ("S",) and order.expected_ship_date == date(2026, 2, 1)


def test_review_holds_until_staff_releases() -> None:
    order, emitted = run(placed(), [risk("review"), authorized(), reserved()])
    assert emitted == ["order.awaiting_review.v1"] and order.status == OrderStatus.AWAITING_REVIEW
    release = DecideReview(order_id="o-1", decision="release", staff_id="s-1")
    outcome = decide_review(order, release, NOW)
    assert outcome.event is not None and outcome.event.TYPE == "order.confirmed.v1"
    assert outcome.order.version == 3


def test_review_rejected_cancels() -> None:
    order, _ = run(placed(), [risk("review")])
    outcome = decide_review(
        order, DecideReview(order_id="o-1", decision="reject", staff_id="s"), NOW
    )
    assert outcome.order.status == OrderStatus.CANCELLED
    assert outcome.event is not None and outcome.event.cancelled_by == "staff"  # type: ignore[attr-defined]


def test_customer_cancels_a_confirmed_order_but_not_someone_elses() -> None:
    order, _ = run(placed(), [authorized(), reserved(), risk("pass")])
    mine = CancelOrder(
        order_id="o-1", requested_by="customer", actor_id="c-1", reason="changed mind"
    )
    outcome = cancel(order, mine, NOW)
    assert outcome.order.status == OrderStatus.CANCELLED
    assert outcome.event is not None and outcome.event.cancelled_by == "customer"  # type: ignore[attr-defined]
    theirs = CancelOrder(order_id="o-1", requested_by="customer", actor_id="c-2")
    with pytest.raises(Refused) as refused:
        cancel(order, theirs, NOW)
    assert refused.value.code == "not_your_order"


def test_too_late_to_cancel_once_picking_started() -> None:
    picking = Order(order_id="o-1", status=OrderStatus.PICKING, version=3, customer_id="c-1")
    with pytest.raises(Refused) as refused:
        cancel(picking, CancelOrder(order_id="o-1", requested_by="staff", actor_id="s"), NOW)
    assert refused.value.code == "too_late_to_cancel"


def test_verdicts_after_a_decision_change_nothing_but_are_noted() -> None:
    order, _ = run(placed(), [declined()])
    late = record(order, authorized(), NOW)
    assert late.event is None and late.order.status == OrderStatus.CANCELLED
    assert late.order.payment == "authorized" and late.order.version == order.version
