"""Projection rules for the order-tracking view. Pure: no I/O.

The view is fed by several streams, each owning its own fields:
- order events own status, version and the order's details. They carry the order's
  version; the view only moves forward, so a repeated or stale one changes nothing.
- payment events own ``payment_status``; inventory events own ``stock_status``,
  ``reservations`` and ``backordered``. Each arrives in order on its own partition
  (keyed by order id), so the last one applied is the newest.
- picking, packing and shipping events own ``picking``, ``packages``, ``shipments``
  and the estimated delivery derived from them (see ``shipments.py``).
- every event adds one timeline entry, keyed by its ``ce_id``.
Because no field has two writers and ``updated_at`` only grows, replaying the streams
from offset 0, in any interleaving, ends in the same state as the live projection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from services.portal.domain.shipments import apply_fulfillment
from shared.schemas import TOPICS, Message
from shared.schemas.events.fulfillment import FulfillmentEvent
from shared.schemas.events.inventory import (
    BackorderAllocated,
    InventoryCommitted,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
)
from shared.schemas.events.order import OrderConfirmed, OrderEvent, OrderPlaced, OrderRejected
from shared.schemas.events.payment import PaymentDeclined, PaymentEvent
from shared.schemas.events.risk import RiskAssessed

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

PAYMENT_STATUS_BY_EVENT: dict[str, str] = {
    "payment.authorized.v1": "authorized",
    "payment.declined.v1": "declined",
    "payment.authorization_failed.v1": "failed",
    "payment.voided.v1": "voided",
    "payment.captured.v1": "captured",
    "payment.capture_failed.v1": "capture_failed",
    "payment.refunded.v1": "refunded",
    "payment.refund_failed.v1": "refund_failed",
}

STOCK_EVENTS = (
    InventoryReserved,
    InventoryReservationFailed,
    InventoryReleased,
    InventoryCommitted,
    BackorderAllocated,
)
STOCK_STATUS_BY_EVENT: dict[str, str] = {
    "inventory.reserved.v1": "reserved",
    "inventory.reservation_failed.v1": "unavailable",
    "inventory.released.v1": "released",
    "inventory.committed.v1": "shipped",
    "inventory.backorder_allocated.v1": "reserved",
}


@dataclass(frozen=True)
class TimelineEntry:
    event_id: str
    event_type: str
    occurred_at: datetime
    status: str | None = None  # the order status this step led to, for order events
    version: int | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


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
    placed_at: datetime | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    payment_status: str = "pending"
    stock_status: str = "pending"
    reservations: list[dict[str, Any]] = field(default_factory=list)
    backordered: list[dict[str, Any]] = field(default_factory=list)
    expected_ship_date: date | None = None
    picking: list[dict[str, Any]] = field(default_factory=list)  # pick tasks
    packages: list[dict[str, Any]] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)
    estimated_delivery: date | None = None


Change = tuple[OrderView, TimelineEntry]

# Steps of one handler share a timestamp (a label bought and the parcel dispatched, the
# last item picked and the task completed); the registry lists each topic's types in
# lifecycle order, so that order breaks the tie.
LIFECYCLE_RANK = {
    t: i for i, t in enumerate(m for topic in TOPICS.values() for m in topic.messages)
}


def timeline_order(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Oldest first; same instant: order version, then lifecycle order, then event id."""
    return sorted(
        entries,
        key=lambda e: (
            e.occurred_at,
            e.version is None,
            e.version or 0,
            LIFECYCLE_RANK.get(e.event_type, len(LIFECYCLE_RANK)),
            e.event_id,
        ),
    )


TRACKED = (
    OrderEvent,
    PaymentEvent,
    InventoryReservationFailed,
    *STOCK_EVENTS,
    RiskAssessed,
    FulfillmentEvent,
)


def apply(view: OrderView | None, event: Message, event_id: str) -> Change | None:
    """The view after ``event`` and its timeline entry; None if it changes nothing."""
    order_id: str = event.order_id  # type: ignore[attr-defined]
    occurred_at: datetime = event.occurred_at  # type: ignore[attr-defined]
    # A payment or stock event can be projected before the order event it follows
    # (they come from other topics): start from a skeleton at version 0.
    base = view or OrderView(order_id, 0, "placed", occurred_at)
    base = replace(base, updated_at=max(base.updated_at, occurred_at))
    if isinstance(event, OrderEvent):
        return _order_event(view, base, event, event_id)
    entry = TimelineEntry(event_id, event.TYPE, occurred_at, detail=_detail(event))
    if isinstance(event, FulfillmentEvent):
        return apply_fulfillment(base, event, entry)
    if isinstance(event, PaymentEvent):
        reasons = [_decline_reason(event)] if isinstance(event, PaymentDeclined) else []
        status = PAYMENT_STATUS_BY_EVENT[event.TYPE]
        return replace(base, payment_status=status), replace(entry, reasons=reasons)
    if isinstance(event, RiskAssessed):
        return base, replace(entry, reasons=[r.model_dump() for r in event.reasons])
    return _stock_event(base, event, entry)


def _order_event(
    view: OrderView | None, base: OrderView, event: OrderEvent, event_id: str
) -> Change | None:
    if view is not None and event.order_version <= view.version:
        return None
    status = STATUS_BY_EVENT[event.TYPE]
    reasons = [r.model_dump() for r in getattr(event, "reasons", [])]
    new = replace(base, version=event.order_version, status=status)
    if isinstance(event, OrderPlaced | OrderRejected):
        new = replace(
            new,
            storefront_id=event.storefront_id,
            storefront_reference=event.storefront_reference,
            placed_at=event.occurred_at,
        )
    if isinstance(event, OrderPlaced):
        new = replace(
            new,
            customer_id=event.customer.customer_id,
            currency=event.currency,
            total_minor=event.amounts.total_minor,
            lines=[line.model_dump() for line in event.lines],
        )
    elif isinstance(event, OrderRejected):
        new = replace(new, customer_id=event.customer_id)
    elif isinstance(event, OrderConfirmed):
        new = replace(new, expected_ship_date=event.expected_ship_date)
    if reasons:
        new = replace(new, reasons=reasons)
    entry = TimelineEntry(
        event_id, event.TYPE, event.occurred_at, status, event.order_version, reasons
    )
    return new, entry


def _stock_event(base: OrderView, event: Message, entry: TimelineEntry) -> Change:
    status = STOCK_STATUS_BY_EVENT[event.TYPE]
    new = replace(base, stock_status=status)
    if isinstance(event, InventoryReserved):
        new = replace(
            new,
            reservations=[a.model_dump() for a in event.allocations],
            backordered=[b.model_dump(mode="json") for b in event.backordered],
        )
    elif isinstance(event, BackorderAllocated):
        new = replace(
            new,
            reservations=[*base.reservations, *(a.model_dump() for a in event.allocations)],
            backordered=[b.model_dump(mode="json") for b in event.still_backordered],
        )
    elif isinstance(event, InventoryReleased):
        new = replace(new, reservations=[], backordered=[])
    reasons = []
    if isinstance(event, InventoryReservationFailed):
        reasons = [
            {"code": s.code, "field": s.sku, "message": s.message or f"{s.sku}: {s.code}"}
            for s in event.shortages
        ]
    return new, replace(entry, reasons=reasons)


def _decline_reason(event: PaymentDeclined) -> dict[str, Any]:
    return {"code": event.code, "field": None, "message": event.message or "payment declined"}


def _detail(event: Message) -> dict[str, Any]:
    """A few fields worth showing on the timeline, JSON-ready."""
    wanted = ("verdict", "score", "authorization_id", "capture_id", "refund_id", "shipment_id")
    data = event.model_dump(mode="json")
    detail = {key: data[key] for key in wanted if data.get(key) is not None}
    if "amount" in data:
        detail["amount"] = data["amount"]
    return detail
