"""Inventory context: stock per warehouse, reservations, allocation, backorders.

Topics (single writer: services/inventory): ``inventory.events`` for what happens to an
order's stock (key: order id) and ``stock.events`` for a SKU's stock (key: SKU), which
the portal reads for availability. ``inventory.commands`` carries goods receipts from
warehouse staff and 3PL clients (key: SKU).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import INT32_MAX, Count, Quantity, Text, Value
from shared.schemas.registry import Message, command, event

ShortageCode = Literal["out_of_stock", "unknown_sku", "not_backorderable", "discontinued"]
StockSource = Literal["purchase_order", "return", "adjustment"]


class Allocation(Value):
    """Units of one order line held in (or taken from) one warehouse."""

    line_id: Text
    sku: Text
    warehouse_id: Text
    quantity: Quantity


class BackorderedLine(Value):
    """Units of one order line waiting for stock that is not there yet."""

    line_id: Text
    sku: Text
    quantity: Quantity
    expected_restock_date: date | None = None


class SkuShortage(Value):
    """Why the units of one SKU could be neither reserved nor backordered."""

    sku: Text
    requested: Quantity
    available: Count
    code: ShortageCode
    message: Text = ""


class ReservationEvent(Message):
    order_id: Text
    reservation_id: Text
    occurred_at: datetime


@event("inventory.reserved.v1")
class InventoryReserved(ReservationEvent):
    """Stock is held for every line after ``order.placed``, split across warehouses."""

    allocations: list[Allocation]
    backordered: list[BackorderedLine] = []


@event("inventory.backorder_allocated.v1")
class BackorderAllocated(ReservationEvent):
    """Units of lines that were waiting are now held for them: stock arrived for
    backordered lines, or units a picker did not find (a short pick) were allocated
    again. ``still_backordered``: every line of the order still waiting for stock."""

    allocations: list[Allocation]
    still_backordered: list[BackorderedLine] = []
    short_pick_task_id: Text | None = Field(
        default=None,
        description="set when this round replaces units not found in this pick task (a "
        "short pick): allocated again where available, else backordered",
    )
    short_pick_line_id: Text | None = Field(
        default=None,
        description="with short_pick_task_id: the line picked short. Inventory answers "
        "every short pick with one such event, even when nothing could be allocated or "
        "backordered (the units are then not supplied), so the order knows it is settled",
    )

    @property
    def round_id(self) -> str:
        """This allocation round's id, from its content, the same in every service that
        reads it: picking, packing and shipping keep a round's units together and apart
        from the order's other rounds, and the order waits for each round's shipment.
        A re-emitted event (new ce_id, same content) is the same round; two genuine
        rounds never look alike, because the units still backordered go down with each.
        """
        content = sorted((a.line_id, a.sku, a.warehouse_id, a.quantity) for a in self.allocations)
        waiting = sum(b.quantity for b in self.still_backordered)
        parts: list[object] = [content, waiting]
        if self.short_pick_task_id is not None:  # one round per short-picked task and line
            parts.append(self.short_pick_task_id)
        digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
        return f"backorder:{digest[:20]}"


@event("inventory.reservation_failed.v1")
class InventoryReservationFailed(Message):
    """At least one line could be neither reserved nor backordered; nothing is held."""

    order_id: Text
    shortages: list[SkuShortage]
    occurred_at: datetime


@event("inventory.released.v1")
class InventoryReleased(ReservationEvent):
    """A reservation was given back (order cancelled or rejected): the stock is free again."""

    allocations: list[Allocation]
    reason: Text


@event("inventory.committed.v1")
class InventoryCommitted(ReservationEvent):
    """Reserved units left the warehouse with a dispatched shipment; on-hand went down."""

    shipment_id: Text
    allocations: list[Allocation]


@event("inventory.stock_received.v1", subject="sku")
class StockReceived(Message):
    """Units were added to a warehouse's on-hand stock: a goods receipt or a restocked return."""

    sku: Text
    warehouse_id: Text
    quantity: Quantity
    receipt_id: Text
    source: StockSource
    order_id: Text | None = Field(default=None, description="the returned order, for returns")
    return_id: Text | None = None
    occurred_at: datetime


@command("inventory.receive_stock.v1", subject="sku")
class ReceiveStock(Message):
    """Warehouse staff or a 3PL books a goods receipt; ``receipt_id`` makes retries idempotent."""

    sku: Text
    warehouse_id: Text
    quantity: Quantity
    receipt_id: Text
    reference: Text = Field(default="", description="purchase order or delivery note")
    received_by: Text


@event("stock.level_changed.v1", subject="sku")
class StockLevelChanged(Message):
    """A SKU's position in one warehouse changed (reserve, release, commit or receipt)."""

    sku: Text
    warehouse_id: Text
    on_hand: Count
    reserved: Count
    safety_stock: Count
    available: Count = Field(description="on_hand - reserved - safety_stock, floored at 0")
    backorderable: bool
    next_restock_date: date | None = None
    version: int = Field(
        ge=1, le=INT32_MAX, description="per SKU and warehouse; projections skip stale ones"
    )
    occurred_at: datetime
