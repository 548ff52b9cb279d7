"""Order, short-pick, shipment, goods-receipt and return events in → inventory rules →
events out.

Each handler runs in the runtime's unit of work (possibly beside other records of its
partition batch): it locks what it changes — the orders' reservations, then stock rows
in (sku, warehouse) order — before deciding. Placements and shipments, the hot paths, are
``Batched``: a run of them reads and locks what it needs once, decides record by record
in memory (each record seeing what the ones before it left), then writes each table
once; the rare cancellations, short picks and receipts go record by record.
"""

from __future__ import annotations

from services.inventory.handlers.orders import on_order_cancelled, on_orders_placed
from services.inventory.handlers.receipts import on_receive_stock, on_return_restocked
from services.inventory.handlers.shipments import on_shipments_dispatched
from services.inventory.handlers.short_picks import on_short_picked
from shared.runtime.consumer import Batched, Handler
from shared.schemas.events.fulfillment import ShipmentDispatched, ShortPicked
from shared.schemas.events.inventory import ReceiveStock
from shared.schemas.events.order import OrderCancelled, OrderPlaced
from shared.schemas.events.returns import ReturnRestocked

HANDLERS: dict[str, Handler] = {
    OrderPlaced.TYPE: Batched(on_orders_placed),
    OrderCancelled.TYPE: on_order_cancelled,
    ShipmentDispatched.TYPE: Batched(on_shipments_dispatched),
    ShortPicked.TYPE: on_short_picked,
    ReceiveStock.TYPE: on_receive_stock,
    ReturnRestocked.TYPE: on_return_restocked,
}
