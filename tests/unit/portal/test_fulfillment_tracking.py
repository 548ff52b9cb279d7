"""Tracking after confirmation: pick tasks, packages, shipments and carrier scans."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

from services.portal.domain import OrderView, apply
from services.portal.domain.tracking import TimelineEntry, timeline_order
from shared.schemas import Message
from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import (
    ItemCount,
    NothingPicked,
    Package,
    Packed,
    PickItem,
    PickTaskCancelled,
    PickTaskCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShippedPackage,
    ShortLine,
    ShortPicked,
    TrackingUpdated,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ITEM = PickItem(line_id="1", sku="MUG", quantity=2, location="A-01")
BOX = {"box_code": "S", "length_mm": 10, "width_mm": 10, "height_mm": 10, "weight_grams": 5}
SHIPMENT = {"order_id": "o-1", "shipment_id": "s-1", "carrier": "parcelco", "tracking_number": "T1"}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def dispatched(eta: date) -> ShipmentDispatched:
    package = ShippedPackage(package_id="p-1", tracking_number="T1-1", items=[], **BOX)
    return ShipmentDispatched(
        **SHIPMENT, occurred_at=at(3), warehouse_id="W1", service="ground",
        estimated_delivery=eta, packages=[package],
    )  # fmt: skip


def scan(status: str, minute: int, eta: date | None = None) -> TrackingUpdated:
    return TrackingUpdated(
        **SHIPMENT, occurred_at=at(minute), status=status, carrier_event_id=f"e-{minute}",
        location="Leeds", estimated_delivery=eta,
    )  # type: ignore[arg-type]  # fmt: skip


def lifecycle() -> list[Message]:
    package = Package(
        package_id="p-1", items=[ItemCount(line_id="1", sku="MUG", quantity=1)], **BOX
    )
    return [
        PickTaskCreated(
            order_id="o-1", occurred_at=at(1), task_id="t-1", warehouse_id="W1",
            reservation_id="r", items=[ITEM], strategy="zone", zone="A",
        ),
        ShortPicked(
            order_id="o-1", occurred_at=at(2), task_id="t-1", warehouse_id="W1", item=ITEM,
            picked=1, picker_id="sim",
        ),
        Packed(
            order_id="o-1", occurred_at=at(2), packing_id="k", warehouse_id="W1",
            packages=[package], packer_id="sim",
        ),
        dispatched(date(2026, 3, 5)),
        scan("in_transit", 4),
        ShipmentException(
            **SHIPMENT, occurred_at=at(5), status="delayed",
            reason=Reason(code="weather", message="storm"), estimated_delivery=date(2026, 3, 7),
        ),
        scan("delivered", 6),
        ShipmentDelivered(**SHIPMENT, occurred_at=at(6), signed_by="A. Customer"),
    ]  # fmt: skip


def project(events: list[Message]) -> tuple[OrderView | None, list[str]]:
    view: OrderView | None = None
    steps = []
    for i, event in enumerate(events):
        change = apply(view, event, f"ev-{i}-{event.TYPE}")
        assert change is not None
        view, entry = change
        steps.append(entry.event_type)
    return view, steps


def test_the_view_shows_tasks_packages_shipments_and_the_eta() -> None:
    view, steps = project(lifecycle())
    assert view is not None
    assert len(steps) == len(lifecycle()), "every event is a step on the timeline"
    [task] = view.picking
    assert task["zone"] == "A" and task["strategy"] == "zone"
    [package] = view.packages
    assert package["warehouse_id"] == "W1" and package["box_code"] == "S"
    [shipment] = view.shipments
    assert shipment["status"] == "delivered"
    assert shipment["packages"] == [{"package_id": "p-1", "tracking_number": "T1-1"}]
    assert shipment["exception"]["code"] == "weather"
    assert view.estimated_delivery == date(2026, 3, 7), "the delay moved the date"


def test_short_pick_and_exception_carry_reasons() -> None:
    events = lifecycle()
    short = apply(None, events[1], "e1")
    delayed = apply(None, events[5], "e5")
    assert short is not None and delayed is not None
    assert short[1].reasons[0]["code"] == "short_pick"
    assert "backordered" in short[1].reasons[0]["message"]
    assert delayed[1].reasons == [{"code": "weather", "field": None, "message": "storm"}]
    assert delayed[1].detail["status"] == "delayed"


def test_a_warehouse_with_nothing_to_pack_is_a_step_with_no_package() -> None:
    nothing = NothingPicked(
        order_id="o-1", occurred_at=at(3), packing_id="k-2", warehouse_id="W2",
        short_picks=[ShortLine(task_id="t-2", line_id="1")],
    )  # fmt: skip
    view, _ = project(lifecycle()[:3])
    change = apply(view, nothing, "ev-nothing")
    assert change is not None
    view, entry = change
    assert entry.event_type == "packing.nothing_picked.v1"
    assert entry.detail["warehouse_id"] == "W2"
    assert [p["warehouse_id"] for p in view.packages] == ["W1"]


def test_a_withdrawn_task_shows_as_cancelled() -> None:
    withdrawn = PickTaskCancelled(
        order_id="o-1", occurred_at=at(2), task_id="t-1", warehouse_id="W1"
    )
    view, steps = project([lifecycle()[0], withdrawn])
    assert view is not None and steps[-1] == "picking.task_cancelled.v1"
    [task] = view.picking
    assert task["status"] == "cancelled" and task["items"], "the task keeps what it listed"


def test_a_late_scan_does_not_undo_delivered() -> None:
    view, _ = project([dispatched(date(2026, 3, 5)), scan("delivered", 6), scan("in_transit", 7)])
    assert view is not None
    assert view.shipments[0]["status"] == "delivered"


def test_repeats_change_nothing_and_streams_interleave_freely() -> None:
    events = lifecycle()
    once, _ = project(events)
    twice, _ = project([e for event in events for e in (event, event)])
    assert once is not None and twice is not None
    assert (once.picking, once.packages, once.shipments) == (
        twice.picking,
        twice.packages,
        twice.shipments,
    )
    # picking, packing and shipping are separate streams: any interleaving, same view
    picking, packing, shipping = events[:2], events[2:3], events[3:]
    for streams in itertools.permutations([picking, packing, shipping]):
        view, _ = project([e for stream in streams for e in stream])
        assert view is not None
        assert (view.picking, view.packages, view.shipments, view.estimated_delivery) == (
            once.picking,
            once.packages,
            once.shipments,
            once.estimated_delivery,
        )


def test_steps_of_one_instant_are_shown_in_lifecycle_order() -> None:
    types = [
        "shipment.dispatched.v1",
        "picking.completed.v1",
        "shipping.label_purchased.v1",
        "picking.item_picked.v1",
        "shipment.delivered.v1",
        "shipment.tracking_updated.v1",
    ]
    # event ids sort against lifecycle order, so only the rank can put them right
    entries = [TimelineEntry(f"{9 - i}", t, T0) for i, t in enumerate(types)]
    assert [e.event_type for e in timeline_order(entries)] == [
        "picking.item_picked.v1",
        "picking.completed.v1",
        "shipping.label_purchased.v1",
        "shipment.dispatched.v1",
        "shipment.tracking_updated.v1",
        "shipment.delivered.v1",
    ]
