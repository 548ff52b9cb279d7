"""Fulfillment contexts: picking, packing and shipping (three stage services, one package).

Topics, each with its own single writer: ``picking.events`` (picking), ``packing.events``
(packing), ``shipping.events`` (shipping: ``shipping.*`` and ``shipment.*`` types).
``picking.commands`` carries confirmations from warehouse handhelds, ``shipping.commands``
carrier tracking updates received by the webhook. Key: order id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import INT32_MAX, Count, Money, Quantity, Reason, Text, Value
from shared.schemas.registry import Message, command, event

TrackingStatus = Literal[
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delivery_exception",
    "delayed",
    "returned_to_sender",
]
ExceptionStatus = Literal["delivery_exception", "delayed", "returned_to_sender"]
PickingStrategy = Literal["single_order", "batch", "zone", "wave"]


class FulfillmentEvent(Message):
    order_id: Text
    occurred_at: datetime


# The allocation round a warehouse's units belong to: None for the order's reservation,
# else the ``inventory.backorder_allocated`` round (``BackorderAllocated.round_id``) that
# allocated them later. Each (warehouse, round) is picked, packed and shipped on its own,
# so units allocated after a warehouse already packed the order get a shipment of their own.
BACKORDER_ROUND = Field(
    default=None,
    description="the backorder allocation round (BackorderAllocated.round_id) these units "
    "were allocated in; null: the order's reservation",
)


class ItemCount(Value):
    """A quantity of one order line."""

    line_id: Text
    sku: Text
    quantity: Quantity


# --- picking ---


class PickItem(ItemCount):
    """What to pick for one line, and where."""

    location: Text


class PickEvent(FulfillmentEvent):
    task_id: Text
    warehouse_id: Text


@event("picking.task_created.v1")
class PickTaskCreated(PickEvent):
    """A pick list for one warehouse's allocations of a confirmed order (with the zone
    strategy, one list per zone), released to the pickers."""

    reservation_id: Text
    items: list[PickItem]
    strategy: PickingStrategy = "single_order"
    trip_id: Text | None = Field(
        default=None, description="the batch or wave this task is picked with, if any"
    )
    zone: Text | None = None
    backorder_round: Text | None = BACKORDER_ROUND


@event("picking.task_cancelled.v1")
class PickTaskCancelled(PickEvent):
    """A released task whose order was cancelled before it was picked: the pickers stop,
    and nothing is packed from it. (The order service refuses a cancellation once
    picking started, so this is a cancellation decided before the task reached it.)"""


@event("picking.item_picked.v1")
class ItemPicked(PickEvent):
    """A picker confirmed the expected units of a line at a location."""

    item: PickItem
    picker_id: Text


@event("picking.short_picked.v1")
class ShortPicked(PickEvent):
    """A picker found fewer units than expected; ``picked`` may be zero."""

    item: PickItem
    picked: Count
    picker_id: Text


@event("picking.completed.v1")
class PickingCompleted(PickEvent):
    """Every item of the task was picked or reported short; the tote goes to packing."""

    picked: list[ItemCount]
    short_line_ids: list[Text] = []


@command("picking.confirm_pick.v1")
class ConfirmPick(Message):
    """A handheld confirms what was picked for one task item (0 = nothing found)."""

    order_id: Text
    task_id: Text
    line_id: Text
    sku: Text
    location: Text
    quantity_picked: Count
    picker_id: Text
    confirmation_id: Text = Field(description="chosen by the device; a retry reuses it")
    scanned_at: datetime


# --- packing ---


class Package(Value):
    """One box as it leaves the packing station."""

    package_id: Text
    box_code: Text
    length_mm: int = Field(gt=0, le=INT32_MAX)
    width_mm: int = Field(gt=0, le=INT32_MAX)
    height_mm: int = Field(gt=0, le=INT32_MAX)
    weight_grams: int = Field(gt=0, le=INT32_MAX)
    items: list[ItemCount]


@event("packing.packed.v1")
class Packed(FulfillmentEvent):
    """The picked items of a warehouse are boxed and weighed, ready for a label."""

    packing_id: Text
    warehouse_id: Text
    packages: list[Package]
    packer_id: Text
    backorder_round: Text | None = BACKORDER_ROUND


class ShortLine(Value):
    """A line of a pick task that ended short."""

    task_id: Text
    line_id: Text


@event("packing.nothing_picked.v1")
class NothingPicked(FulfillmentEvent):
    """Every task of a consignment (an order's units at a warehouse in one allocation
    round) completed with nothing picked: there is nothing to pack or ship from it. Its
    lines' short picks say why; inventory allocates the units again or backorders them."""

    packing_id: Text
    warehouse_id: Text
    short_picks: list[ShortLine]
    backorder_round: Text | None = BACKORDER_ROUND


# --- shipping ---


class ShipmentEvent(FulfillmentEvent):
    shipment_id: Text
    carrier: Text
    tracking_number: Text


class LabelledPackage(Value):
    package_id: Text
    tracking_number: Text


@event("shipping.label_purchased.v1")
class LabelPurchased(ShipmentEvent):
    """A carrier label was bought for the packed packages."""

    service: Text
    packages: list[LabelledPackage]
    label_url: Text
    cost: Money


class ShippedPackage(Package):
    """A package with its own carrier tracking number."""

    tracking_number: Text


@event("shipment.dispatched.v1")
class ShipmentDispatched(ShipmentEvent):
    """The carrier collected the packages: payment captures, inventory commits."""

    warehouse_id: Text
    service: Text
    estimated_delivery: date | None = None
    packages: list[ShippedPackage]
    backorder_round: Text | None = BACKORDER_ROUND


@event("shipment.tracking_updated.v1")
class TrackingUpdated(ShipmentEvent):
    """A carrier scan, deduplicated by ``carrier_event_id``."""

    status: TrackingStatus
    carrier_event_id: Text
    location: Text | None = None
    description: Text = ""
    estimated_delivery: date | None = None


@event("shipment.delivered.v1")
class ShipmentDelivered(ShipmentEvent):
    """The carrier reported the shipment delivered."""

    location: Text | None = None
    signed_by: Text | None = None


@event("shipment.exception.v1")
class ShipmentException(ShipmentEvent):
    """The carrier reported a problem: failed delivery, delay or return to sender."""

    status: ExceptionStatus
    reason: Reason
    estimated_delivery: date | None = None


@command("shipping.carrier_update.v1")
class CarrierUpdate(Message):
    """A carrier webhook call, already matched to its order by tracking number."""

    order_id: Text
    carrier: Text
    tracking_number: Text
    carrier_event_id: Text
    status: TrackingStatus
    location: Text | None = None
    description: Text = ""
    estimated_delivery: date | None = None
    occurred_at: datetime
