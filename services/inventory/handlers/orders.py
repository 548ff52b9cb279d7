"""Placements (reserve, a run at a time) and cancellations (release)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.inventory import domain, store
from services.inventory.handlers.common import emit_levels
from shared.runtime.consumer import run_of
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.inventory import (
    Allocation,
    BackorderedLine,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
)
from shared.schemas.events.order import OrderCancelled, OrderPlaced

log = get_logger(__name__)


async def on_orders_placed(uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
    """Reserve every line (nearest warehouse, else split, else backorder) or nothing, for
    each order of the run in turn; an order placed before, or cancelled before it was
    placed, reserves nothing."""
    conn = uow.conn
    placements = run_of(OrderPlaced, events)
    claimed = await store.claim_reservations(
        conn, [(message.order_id, _ship_to(message)) for message, _ in placements]
    )
    fresh = _first_per_order([(m, e) for m, e in placements if m.order_id in claimed])
    if not fresh:
        return
    skus = {line.sku for message, _ in fresh for line in message.lines}
    stock = domain.StockBook(await store.lock_levels_of_skus(conn, skus))
    catalog = await store.load_skus(conn, skus)
    may_backorder = {sku for sku, known in catalog.items() if known.may_backorder}
    now = datetime.now(UTC)
    outcomes = domain.reserve_in_turn(
        [domain.Placement(_lines(message), _ship_to(message)) for message, _ in fresh],
        network=await store.load_network(conn),
        skus=catalog,
        stock=stock,
        incoming=await store.incoming(conn, may_backorder),
        waiting=await store.waiting_units(conn, may_backorder),
        today=now.date(),
    )
    failed: list[str] = []
    allocations: list[tuple[str, Allocation]] = []
    backorders: list[tuple[str, BackorderedLine]] = []
    for (message, envelope), (decision, levels) in zip(fresh, outcomes, strict=True):
        reservation_id = domain.reservation_id_for(message.order_id)
        if isinstance(decision, domain.Failed):
            failed.append(reservation_id)
            event = InventoryReservationFailed(
                order_id=message.order_id, shortages=decision.shortages, occurred_at=now
            )
            await uow.emit(event, cause=envelope)
            continue
        allocations += [(reservation_id, a) for a in decision.allocations]
        backorders += [(reservation_id, b) for b in decision.backordered]
        reserved = InventoryReserved(
            order_id=message.order_id,
            reservation_id=reservation_id,
            occurred_at=now,
            allocations=decision.allocations,
            backordered=decision.backordered,
        )
        await uow.emit(reserved, cause=envelope)
        await emit_levels(uow, levels, now, envelope)
    await store.set_statuses(conn, failed, "failed")
    await store.add_allocations(conn, allocations)
    await store.add_backorders(conn, backorders)
    await store.move_stock(conn, stock.net_changes())


def _first_per_order(
    placements: Sequence[tuple[OrderPlaced, Envelope]],
) -> list[tuple[OrderPlaced, Envelope]]:
    """The first placement of each order, in run order: a repeated one changes nothing."""
    first: dict[str, tuple[OrderPlaced, Envelope]] = {}
    for message, envelope in placements:
        first.setdefault(message.order_id, (message, envelope))
    return list(first.values())


def _lines(message: OrderPlaced) -> list[domain.Line]:
    return [domain.Line(line.line_id, line.sku, line.quantity) for line in message.lines]


def _ship_to(message: OrderPlaced) -> domain.ShipTo:
    address = message.shipping_address
    return domain.ShipTo(address.country, address.region)


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
