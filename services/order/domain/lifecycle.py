"""The order state machine: which status may follow which. Pure: no I/O, no asyncio."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PLACED = "placed"
    REJECTED = "rejected"
    AWAITING_REVIEW = "awaiting_review"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERY_EXCEPTION = "delivery_exception"
    DELIVERED = "delivered"
    COMPLETED = "completed"


_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PLACED: frozenset({_S.CONFIRMED, _S.CANCELLED, _S.AWAITING_REVIEW}),
    _S.REJECTED: frozenset(),
    _S.AWAITING_REVIEW: frozenset({_S.CONFIRMED, _S.CANCELLED}),
    _S.CONFIRMED: frozenset({_S.PICKING, _S.CANCELLED}),
    _S.CANCELLED: frozenset(),
    # cancelled by the system alone: every unit picked short and none to be had (below)
    _S.PICKING: frozenset({_S.PACKED, _S.CANCELLED}),
    _S.PACKED: frozenset({_S.SHIPPED}),
    _S.SHIPPED: frozenset({_S.DELIVERED, _S.DELIVERY_EXCEPTION}),
    # An exception resolves either back in transit or delivered.
    _S.DELIVERY_EXCEPTION: frozenset({_S.SHIPPED, _S.DELIVERED}),
    _S.DELIVERED: frozenset({_S.COMPLETED}),
    _S.COMPLETED: frozenset(),
}
TERMINAL: frozenset[OrderStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(Exception):
    def __init__(self, current: OrderStatus, new: OrderStatus) -> None:
        super().__init__(f"order cannot go from {current} to {new}")
        self.current = current
        self.new = new


def transition(current: OrderStatus, new: OrderStatus) -> OrderStatus:
    """Return ``new`` if the state machine allows ``current`` → ``new``, else raise."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
    return new


CANCELLABLE_ON_REQUEST = frozenset({_S.PLACED, _S.AWAITING_REVIEW, _S.CONFIRMED})


def can_cancel(status: OrderStatus) -> bool:
    """May a customer or staff cancel it? Until picking starts. (Once picking started,
    only the order itself cancels, when nothing of it could be supplied.)"""
    return status in CANCELLABLE_ON_REQUEST
