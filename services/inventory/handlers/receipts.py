"""Goods receipts and restocked returns: units on hand, backorders served first."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from services.inventory import domain, store
from services.inventory.handlers.common import UnknownStockItem, emit_levels
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.inventory import (
    Allocation,
    BackorderAllocated,
    ReceiveStock,
    StockReceived,
    StockSource,
)
from shared.schemas.events.returns import ReturnRestocked


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
    await store.add_allocations(
        conn,
        [
            (reservation_id, _allocation(s, warehouse_id))
            for reservation_id, items in by_reservation.items()
            for s in items
        ],
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
