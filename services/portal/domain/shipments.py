"""Projection rules for the fulfillment part of order tracking: pick tasks, packages,
shipments and their carrier scans. Pure: no I/O.

Each list has a single writer (picking, packing or shipping events) and is merged by its
entity's id, so a repeated event changes nothing; the events of one writer arrive in
order on the order's partition, so the last scan applied is the newest. The estimated
delivery date is derived from the shipments, never written by two streams.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from shared.schemas.events.fulfillment import (
    FulfillmentEvent,
    ItemPicked,
    LabelPurchased,
    NothingPicked,
    Packed,
    PickEvent,
    PickingCompleted,
    PickTaskCancelled,
    PickTaskCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentEvent,
    ShipmentException,
    ShortPicked,
    TrackingUpdated,
)

if TYPE_CHECKING:
    from services.portal.domain.tracking import Change, OrderView, TimelineEntry

Entity = dict[str, Any]


def apply_fulfillment(base: OrderView, event: FulfillmentEvent, entry: TimelineEntry) -> Change:
    reasons: list[dict[str, Any]] = []
    if isinstance(event, PickEvent):
        view = replace(base, picking=_merge(base.picking, "task_id", _task(event)))
        if isinstance(event, ShortPicked):
            missing = event.item.quantity - event.picked
            reasons = [
                {
                    "code": "short_pick",
                    "field": event.item.sku,
                    "message": f"{missing} unit(s) of {event.item.sku} were not found at "
                    f"{event.warehouse_id}; they are allocated again or backordered",
                }
            ]
    elif isinstance(event, Packed):
        packages = [
            {**p.model_dump(mode="json"), "warehouse_id": event.warehouse_id}
            for p in event.packages
        ]
        merged = base.packages
        for package in packages:
            merged = _merge(merged, "package_id", package)
        view = replace(base, packages=merged)
    elif isinstance(event, NothingPicked):
        view = base  # on the timeline only: no package, the short picks say why
    else:
        assert isinstance(event, ShipmentEvent)
        shipments = _merge(base.shipments, "shipment_id", _shipment(event))
        view = replace(base, shipments=shipments, estimated_delivery=_eta(shipments))
        if isinstance(event, ShipmentException):
            reasons = [event.reason.model_dump()]
    return view, replace(entry, reasons=reasons, detail=_detail(event))


def _task(event: PickEvent) -> Entity:
    task: Entity = {"task_id": event.task_id, "warehouse_id": event.warehouse_id}
    if isinstance(event, PickTaskCreated):
        task |= {
            "status": "open",
            "strategy": event.strategy,
            "zone": event.zone,
            "items": [i.model_dump() for i in event.items],
        }
    elif isinstance(event, ItemPicked | ShortPicked):
        task |= {"status": "picking"}
    elif isinstance(event, PickingCompleted):
        task |= {"status": "completed", "short_line_ids": event.short_line_ids}
    elif isinstance(event, PickTaskCancelled):
        task |= {"status": "cancelled"}
    return task


def _shipment(event: ShipmentEvent) -> Entity:
    shipment: Entity = {
        "shipment_id": event.shipment_id,
        "carrier": event.carrier,
        "tracking_number": event.tracking_number,
    }
    if isinstance(event, LabelPurchased):
        return shipment | {"status": "label_purchased", "service": event.service}
    if isinstance(event, ShipmentDispatched):
        return shipment | {
            "status": "dispatched",
            "service": event.service,
            "warehouse_id": event.warehouse_id,
            "estimated_delivery": _iso(event.estimated_delivery),
            "packages": [
                {"package_id": p.package_id, "tracking_number": p.tracking_number}
                for p in event.packages
            ],
            "dispatched_at": event.occurred_at.isoformat(),
        }
    scan = {"at": event.occurred_at.isoformat()}
    if isinstance(event, TrackingUpdated):
        shipment |= {"status": event.status, "last_scan": scan | _scan(event)}
        if event.estimated_delivery:
            shipment["estimated_delivery"] = _iso(event.estimated_delivery)
        return shipment
    if isinstance(event, ShipmentDelivered):
        return shipment | {"status": "delivered", "delivered_at": event.occurred_at.isoformat()}
    assert isinstance(event, ShipmentException)
    shipment |= {"status": event.status, "exception": event.reason.model_dump()}
    if event.estimated_delivery:
        shipment["estimated_delivery"] = _iso(event.estimated_delivery)
    return shipment


def _scan(event: TrackingUpdated) -> Entity:
    return {"status": event.status, "location": event.location, "description": event.description}


def _merge(entities: list[Entity], key: str, update: Entity) -> list[Entity]:
    """Update the entity with the same id (or add it); keep the list sorted by id."""
    by_id = {e[key]: e for e in entities}
    current = by_id.get(update[key], {})
    if current.get("status") == "delivered" and update.get("status") not in (None, "delivered"):
        update = {k: v for k, v in update.items() if k != "status"}  # delivered is final
    by_id[update[key]] = current | update
    return [by_id[k] for k in sorted(by_id)]


def _eta(shipments: list[Entity]) -> date | None:
    dates = [
        date.fromisoformat(s["estimated_delivery"])
        for s in shipments
        if s.get("estimated_delivery")
    ]
    return max(dates) if dates else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _detail(event: FulfillmentEvent) -> dict[str, Any]:
    """The facts worth a line on the customer's timeline, JSON-ready."""
    data = event.model_dump(mode="json")
    wanted = (
        "warehouse_id", "task_id", "carrier", "service", "tracking_number", "status",
        "location", "description", "estimated_delivery", "signed_by",
    )  # fmt: skip
    detail = {key: data[key] for key in wanted if data.get(key) is not None}
    if isinstance(event, Packed):
        detail["package_count"] = len(event.packages)
    if isinstance(event, ItemPicked | ShortPicked):
        detail["sku"] = event.item.sku
    return detail
