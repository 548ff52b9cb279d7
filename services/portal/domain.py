"""Projection rules for the order-tracking view. Pure: no I/O.

Events carry the order's version; a view only moves forward, so a repeated or stale
event changes nothing and a rebuild from offset 0 ends in the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.schemas.events.order import OrderEvent, OrderPlaced, OrderRejected

STATUS_BY_EVENT: dict[str, str] = {
    "order.placed.v1": "placed",
    "order.rejected.v1": "rejected",
    "order.awaiting_review.v1": "awaiting_review",
    "order.confirmed.v1": "confirmed",
    "order.cancelled.v1": "cancelled",
    "order.picking_started.v1": "picking",
    "order.packed.v1": "packed",
    "order.shipped.v1": "shipped",
    "order.delivery_exception.v1": "delivery_exception",
    "order.delivered.v1": "delivered",
    "order.completed.v1": "completed",
}


@dataclass(frozen=True)
class TimelineEntry:
    version: int
    event_type: str
    status: str
    occurred_at: datetime
    reasons: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class OrderView:
    order_id: str
    version: int
    status: str
    updated_at: datetime
    customer_id: str | None = None
    storefront_id: str | None = None
    storefront_reference: str | None = None
    currency: str | None = None
    total_minor: int | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)


def apply(view: OrderView | None, event: OrderEvent) -> tuple[OrderView, TimelineEntry] | None:
    """The view after ``event``, with its timeline entry; None if the event is not newer."""
    if view is not None and event.order_version <= view.version:
        return None
    status = STATUS_BY_EVENT[event.TYPE]
    reasons = [r.model_dump() for r in getattr(event, "reasons", [])]
    base = view or OrderView(event.order_id, 0, status, event.occurred_at)
    new = replace(base, version=event.order_version, status=status, updated_at=event.occurred_at)
    if isinstance(event, OrderPlaced):
        new = replace(
            new,
            customer_id=event.customer.customer_id,
            storefront_id=event.storefront_id,
            storefront_reference=event.storefront_reference,
            currency=event.currency,
            total_minor=event.amounts.total_minor,
            lines=[line.model_dump() for line in event.lines],
        )
    elif isinstance(event, OrderRejected):
        new = replace(
            new,
            customer_id=event.customer_id,
            storefront_id=event.storefront_id,
            storefront_reference=event.storefront_reference,
        )
    if reasons:
        new = replace(new, reasons=reasons)
    return new, TimelineEntry(event.order_version, event.TYPE, status, event.occurred_at, reasons)
