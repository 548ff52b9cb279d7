"""The confirmation saga: a placed order waits for three verdicts — payment, stock and
risk — and becomes confirmed when all are positive, or cancelled with a reason as soon
as one is negative, whichever arrives first. Pure: no I/O, no asyncio.

Compensations are not commands from here: payment voids and inventory releases when
they read ``order.cancelled`` (they read ``order.events`` in order, so a cancellation
always comes after the ``order.placed`` they acted on).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from services.order.domain.lifecycle import OrderStatus, can_cancel, transition
from services.order.domain.progress import Progress, consignment
from shared.schemas.common import Reason
from shared.schemas.events.inventory import InventoryReservationFailed, InventoryReserved
from shared.schemas.events.order import (
    CancelOrder,
    DecideReview,
    OrderAwaitingReview,
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
)
from shared.schemas.events.payment import (
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentDeclined,
)
from shared.schemas.events.risk import RiskAssessed

PENDING = "pending"
CancelledBy = Literal["customer", "staff", "system"]
Fact = (
    PaymentAuthorized
    | PaymentDeclined
    | PaymentAuthorizationFailed
    | InventoryReserved
    | InventoryReservationFailed
    | RiskAssessed
)


@dataclass(frozen=True)
class Order:
    """What the saga needs to know about one order."""

    order_id: str
    status: OrderStatus
    version: int
    customer_id: str | None = None
    payment: str = PENDING  # authorized | declined | failed
    stock: str = PENDING  # reserved | failed
    risk: str = PENDING  # pass | review | reject | released
    authorization_id: str | None = None
    reservation_id: str | None = None
    backordered_skus: tuple[str, ...] = ()
    expected_ship_date: date | None = None
    progress: Progress = field(default_factory=Progress)  # after confirmation


@dataclass(frozen=True)
class Outcome:
    order: Order
    event: OrderEvent | None = None  # the order event to emit, if the status changed


class Refused(Exception):
    """A request the order's state does not allow; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def record(order: Order, fact: Fact, now: datetime) -> Outcome:
    """Note a verdict, then move the order on if it can. Late verdicts change nothing."""
    noted = _note(order, fact)
    if order.status not in (OrderStatus.PLACED, OrderStatus.AWAITING_REVIEW):
        return Outcome(noted)  # already decided: compensation is done by the reactors
    return _advance(noted, now)


def cancel(order: Order, request: CancelOrder, now: datetime) -> Outcome:
    if request.requested_by == "customer" and request.actor_id != order.customer_id:
        raise Refused("not_your_order", "only the order's customer can cancel it")
    if not can_cancel(order.status):
        raise Refused("too_late_to_cancel", f"an order that is {order.status} cannot be cancelled")
    code = f"{request.requested_by}_requested"
    reason = Reason(code=code, message=request.reason or f"cancelled by {request.requested_by}")
    return _cancelled(order, [reason], request.requested_by, now)


def decide_review(order: Order, decision: DecideReview, now: datetime) -> Outcome:
    if order.status != OrderStatus.AWAITING_REVIEW:
        raise Refused("not_in_review", f"the order is {order.status}, not awaiting review")
    if decision.decision == "reject":
        reason = Reason(code="review_rejected", message=decision.note or "rejected in review")
        return _cancelled(order, [reason], "staff", now)
    return _advance(replace(order, risk="released"), now)


def _note(order: Order, fact: Fact) -> Order:
    match fact:
        case PaymentAuthorized():
            return replace(order, payment="authorized", authorization_id=fact.authorization_id)
        case PaymentDeclined():
            return replace(order, payment="declined")
        case PaymentAuthorizationFailed():
            return replace(order, payment="failed")
        case InventoryReserved():
            dates = [line.expected_restock_date for line in fact.backordered]
            known = [d for d in dates if d is not None]
            return replace(
                order,
                stock="reserved",
                reservation_id=fact.reservation_id,
                backordered_skus=tuple(sorted({line.sku for line in fact.backordered})),
                expected_ship_date=max(known) if known else None,
                progress=replace(
                    order.progress,
                    consignments=frozenset(
                        consignment(a.warehouse_id, None) for a in fact.allocations
                    ),
                    backorder_pending=bool(fact.backordered),
                ),
            )
        case InventoryReservationFailed():
            return replace(order, stock="failed")
        case RiskAssessed():
            return replace(order, risk=fact.verdict)


def _failure_reasons(order: Order) -> list[Reason]:
    reasons = []
    if order.payment == "declined":
        reasons.append(Reason(code="payment_declined", message="the payment was declined"))
    if order.payment == "failed":
        reasons.append(Reason(code="payment_failed", message="the payment gateway failed"))
    if order.stock == "failed":
        reasons.append(Reason(code="out_of_stock", message="some items are out of stock"))
    if order.risk == "reject":
        reasons.append(Reason(code="risk_rejected", message="the order failed the risk check"))
    return reasons


def _advance(order: Order, now: datetime) -> Outcome:
    if reasons := _failure_reasons(order):
        return _cancelled(order, reasons, "system", now)
    if order.risk == "review" and order.status == OrderStatus.PLACED:
        held = _next(order, OrderStatus.AWAITING_REVIEW)
        reason = Reason(code="risk_review", message="held for a manual risk review")
        return Outcome(held, OrderAwaitingReview(**_head(held, now), reasons=[reason]))
    cleared = order.risk in ("pass", "released")
    if order.payment == "authorized" and order.stock == "reserved" and cleared:
        done = _next(order, OrderStatus.CONFIRMED)
        assert done.authorization_id and done.reservation_id
        return Outcome(
            done,
            OrderConfirmed(
                **_head(done, now),
                authorization_id=done.authorization_id,
                reservation_id=done.reservation_id,
                backordered_skus=list(done.backordered_skus),
                expected_ship_date=done.expected_ship_date,
            ),
        )
    return Outcome(order)


def _cancelled(order: Order, reasons: list[Reason], by: CancelledBy, now: datetime) -> Outcome:
    done = _next(order, OrderStatus.CANCELLED)
    event = OrderCancelled(**_head(done, now), reasons=reasons, cancelled_by=by)
    return Outcome(done, event)


def _next(order: Order, status: OrderStatus) -> Order:
    return replace(order, status=transition(order.status, status), version=order.version + 1)


def _head(order: Order, now: datetime) -> dict[str, object]:
    return {"order_id": order.order_id, "order_version": order.version, "occurred_at": now}
