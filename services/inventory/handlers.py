"""Order, shipment, goods-receipt and return events in → inventory rules → events out.

Each handler runs in the runtime's unit of work (possibly beside other records of its
partition batch): it locks what it changes — the order's reservation, then stock rows
in (sku, warehouse) order — before deciding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from services.inventory import domain, store
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ShipmentDispatched
from shared.schemas.events.inventory import (
    Allocation,
    BackorderAllocated,
    InventoryCommitted,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReceiveStock,
    StockReceived,
    StockSource,
)
from shared.schemas.events.order import OrderCancelled, OrderPlaced
from shared.schemas.events.returns import ReturnRestocked

log = get_logger(__name__)


class UnknownStockItem(Exception):
    """Stock for a SKU or warehouse not in the catalog: retried, then dead-lettered."""


class ReservationNotFound(Exception):
    """A shipment for an order this service never saw placed: dead-lettered, for a human."""


async def emit_levels(
    uow: UnitOfWork,
    snapshots: Sequence[domain.LevelSnapshot],
    now: datetime,
    cause: Envelope | None,
) -> None:
    for snapshot in snapshots:
        await uow.emit(domain.level_changed(snapshot, now=now), cause=cause)


async def on_order_placed(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Reserve every line (nearest warehouse, else split, else backorder) or nothing."""
    assert isinstance(message, OrderPlaced)
    conn = uow.conn
    if await store.reservation_exists(conn, message.order_id):
        return  # placed before, or cancelled before it was placed
    lines = [domain.Line(line.line_id, line.sku, line.quantity) for line in message.lines]
    skus = {line.sku for line in lines}
    address = message.shipping_address
    ship_to = domain.ShipTo(address.country, address.region)
    stock = await store.lock_stock(conn, skus)  # held until commit: no one else reserves
    now = datetime.now(UTC)
    decision = domain.allocate(
        lines,
        ship_to,
        network=await store.load_network(conn),
        skus=await store.load_skus(conn, skus),
        stock=stock,
        incoming=await store.incoming(conn, skus),
        waiting=await store.waiting_units(conn, skus),
        today=now.date(),
    )
    reservation_id = domain.reservation_id_for(message.order_id)
    status = "failed" if isinstance(decision, domain.Failed) else "held"
    if not await store.insert_reservation(
        conn,
        reservation_id=reservation_id,
        order_id=message.order_id,
        status=status,
        ship_to=ship_to,
    ):
        return
    if isinstance(decision, domain.Failed):
        failed = InventoryReservationFailed(
            order_id=message.order_id, shortages=decision.shortages, occurred_at=now
        )
        await uow.emit(failed, cause=envelope)
        return
    await store.add_allocations(conn, reservation_id, decision.allocations)
    await store.add_backorders(conn, reservation_id, decision.backordered)
    levels = await store.change_stock(conn, domain.stock_changes(decision.allocations, reserved=1))
    reserved = InventoryReserved(
        order_id=message.order_id,
        reservation_id=reservation_id,
        occurred_at=now,
        allocations=decision.allocations,
        backordered=decision.backordered,
    )
    await uow.emit(reserved, cause=envelope)
    await emit_levels(uow, levels, now, envelope)


async def on_order_cancelled(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Give back every unit still held, once; drop the order's backorders."""
    assert isinstance(message, OrderCancelled)
    conn = uow.conn
    found = await store.lock_reservation(conn, message.order_id)
    if found is None:
        # a tombstone: a late order.placed for this order will not reserve anything
        await store.insert_reservation(
            conn,
            reservation_id=domain.reservation_id_for(message.order_id),
            order_id=message.order_id,
            status="cancelled",
        )
        return
    reservation_id, status = found
    if status != "held":
        return  # nothing held: failed, already released or shipped
    released = domain.to_release(await store.held(conn, reservation_id))
    levels = await store.change_stock(conn, domain.stock_changes(released, reserved=-1))
    await store.drop_backorders(conn, reservation_id)
    await store.set_status(conn, reservation_id, "released")
    now = datetime.now(UTC)
    codes = ", ".join(r.code for r in message.reasons)
    event = InventoryReleased(
        order_id=message.order_id,
        reservation_id=reservation_id,
        occurred_at=now,
        allocations=released,
        reason=f"order_cancelled: {codes}" if codes else "order_cancelled",
    )
    await uow.emit(event, cause=envelope)
    await emit_levels(uow, levels, now, envelope)


async def on_shipment_dispatched(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """The shipped units leave the warehouse: on-hand and reserved go down together."""
    assert isinstance(message, ShipmentDispatched)
    conn = uow.conn
    found = await store.lock_reservation(conn, message.order_id)
    if found is None:
        raise ReservationNotFound(f"order {message.order_id} has no reservation")
    reservation_id, status = found
    if not await store.record_shipment(
        conn,
        shipment_id=message.shipment_id,
        reservation_id=reservation_id,
        order_id=message.order_id,
        warehouse_id=message.warehouse_id,
    ):
        return  # this shipment was committed before
    if status != "held":
        log.warning("inventory.shipment_not_held", status=status, shipment=message.shipment_id)
        return
    shipped = [
        domain.Line(item.line_id, item.sku, item.quantity)
        for package in message.packages
        for item in package.items
    ]
    committed = domain.to_commit(
        await store.held(conn, reservation_id), message.warehouse_id, shipped
    )
    if not committed:
        log.warning("inventory.shipment_matches_nothing_held", shipment=message.shipment_id)
        return
    await store.mark_committed(conn, reservation_id, committed)
    levels = await store.change_stock(
        conn, domain.stock_changes(committed, on_hand=-1, reserved=-1)
    )
    if await store.fully_committed(conn, reservation_id):
        await store.set_status(conn, reservation_id, "committed")
    now = datetime.now(UTC)
    event = InventoryCommitted(
        order_id=message.order_id,
        reservation_id=reservation_id,
        occurred_at=now,
        shipment_id=message.shipment_id,
        allocations=committed,
    )
    await uow.emit(event, cause=envelope)
    await emit_levels(uow, levels, now, envelope)


async def receive(
    uow: UnitOfWork,
    *,
    sku: str,
    warehouse_id: str,
    quantity: int,
    receipt_id: str,
    source: StockSource,
    cause: Envelope | None,
    reference: str = "",
    received_by: str = "",
    order_id: str | None = None,
    return_id: str | None = None,
) -> None:
    """Book units into a warehouse, once per receipt id; waiting backorders of the SKU
    get them first (oldest first), the rest becomes available."""
    conn = uow.conn
    if not await store.record_receipt(
        conn,
        receipt_id=receipt_id,
        sku=sku,
        warehouse_id=warehouse_id,
        quantity=quantity,
        source=source,
        reference=reference,
        received_by=received_by,
        order_id=order_id,
        return_id=return_id,
    ):
        return  # booked before
    sku_known, warehouse_known = await store.known(conn, sku, warehouse_id)
    if not (sku_known and warehouse_known):
        missing = f"SKU {sku!r}" if not sku_known else f"warehouse {warehouse_id!r}"
        raise UnknownStockItem(f"receipt {receipt_id}: {missing} is not in the catalog")
    level = await store.lock_stock_row(conn, sku, warehouse_id)
    if source == "purchase_order":
        await store.consume_incoming(conn, sku, warehouse_id, quantity, reference)
    queue = await store.backorder_queue(conn, sku)
    held = await store.lock_reservations(conn, {b.reservation_id for b in queue})
    queue = [b for b in await store.backorder_queue(conn, sku) if b.reservation_id in held]
    served = domain.serve_backorders(queue, domain.received(level, quantity).available)
    await store.reduce_backorders(conn, served)
    by_reservation: dict[str, list[domain.Served]] = defaultdict(list)
    for s in served:
        by_reservation[s.backorder.reservation_id].append(s)
    for reservation_id, items in by_reservation.items():
        await store.add_allocations(
            conn, reservation_id, [_allocation(s, warehouse_id) for s in items]
        )
    levels = await store.change_stock(
        conn, {(sku, warehouse_id): (quantity, sum(s.quantity for s in served))}
    )
    now = datetime.now(UTC)
    stock_received = StockReceived(
        sku=sku,
        warehouse_id=warehouse_id,
        quantity=quantity,
        receipt_id=receipt_id,
        source=source,
        order_id=order_id,
        return_id=return_id,
        occurred_at=now,
    )
    await uow.emit(stock_received, cause=cause)
    for reservation_id, items in by_reservation.items():
        still = await store.backorders_of(conn, reservation_id)
        allocated = BackorderAllocated(
            order_id=items[0].backorder.order_id,
            reservation_id=reservation_id,
            occurred_at=now,
            allocations=[_allocation(s, warehouse_id) for s in items],
            still_backordered=[b.line() for b in still],
        )
        await uow.emit(allocated, cause=cause)
    await emit_levels(uow, levels, now, cause)


def _allocation(served: domain.Served, warehouse_id: str) -> Allocation:
    b = served.backorder
    return Allocation(
        line_id=b.line_id, sku=b.sku, warehouse_id=warehouse_id, quantity=served.quantity
    )


async def on_receive_stock(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    assert isinstance(message, ReceiveStock)
    await receive(
        uow,
        sku=message.sku,
        warehouse_id=message.warehouse_id,
        quantity=message.quantity,
        receipt_id=message.receipt_id,
        source="purchase_order",
        reference=message.reference,
        received_by=message.received_by,
        cause=envelope,
    )


async def on_return_restocked(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Resellable returned units go back on hand (and to backorders first)."""
    assert isinstance(message, ReturnRestocked)
    for line in message.lines:
        await receive(
            uow,
            sku=line.sku,
            warehouse_id=message.warehouse_id,
            quantity=line.quantity,
            receipt_id=f"return:{message.return_id}:{line.line_id}",
            source="return",
            order_id=message.order_id,
            return_id=message.return_id,
            cause=envelope,
        )


HANDLERS = {
    OrderPlaced.TYPE: on_order_placed,
    OrderCancelled.TYPE: on_order_cancelled,
    ShipmentDispatched.TYPE: on_shipment_dispatched,
    ReceiveStock.TYPE: on_receive_stock,
    ReturnRestocked.TYPE: on_return_restocked,
}
