"""Dispatched shipments (commit, a run at a time): the units leave the warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.inventory import domain, store
from services.inventory.handlers.common import ReservationNotFound, emit_levels
from shared.runtime.consumer import run_of
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ShipmentDispatched
from shared.schemas.events.inventory import (
    Allocation,
    InventoryCommitted,
)

log = get_logger(__name__)


async def on_shipments_dispatched(
    uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
) -> None:
    """The shipped units leave the warehouse: on-hand and reserved go down together. Each
    shipment of the run in turn, once per shipment id; the reservation is committed once
    nothing of it is outstanding or backordered."""
    conn = uow.conn
    shipments = run_of(ShipmentDispatched, events)
    reservations = await store.lock_reservations_of_orders(
        conn, {message.order_id for message, _ in shipments}
    )
    for message, _ in shipments:
        if message.order_id not in reservations:
            raise ReservationNotFound(f"order {message.order_id} has no reservation")
    recorded = await store.record_shipments(
        conn,
        [
            (m.shipment_id, reservations[m.order_id].reservation_id, m.order_id, m.warehouse_id)
            for m, _ in shipments
        ],
    )
    commits: list[tuple[ShipmentDispatched, Envelope, str, list[Allocation]]] = []
    done: list[str] = []  # reservations this run commits fully
    for message, envelope in shipments:
        if message.shipment_id not in recorded:
            continue  # this shipment was committed before
        recorded.discard(message.shipment_id)  # a repeat later in the run: committed now
        reservation = reservations[message.order_id]
        committed = _commit(reservation, message)
        if not committed:
            continue
        reservations[message.order_id] = shipped = reservation.shipped(committed)
        commits.append((message, envelope, reservation.reservation_id, committed))
        if shipped.status == "committed":
            done.append(reservation.reservation_id)
    if not commits:
        return
    stock = domain.StockBook(
        await store.lock_levels(conn, {(a.sku, a.warehouse_id) for *_, c in commits for a in c})
    )
    now = datetime.now(UTC)
    for message, envelope, reservation_id, committed in commits:
        levels = stock.change(domain.stock_changes(committed, on_hand=-1, reserved=-1))
        event = InventoryCommitted(
            order_id=message.order_id,
            reservation_id=reservation_id,
            occurred_at=now,
            shipment_id=message.shipment_id,
            allocations=committed,
        )
        await uow.emit(event, cause=envelope)
        await emit_levels(uow, levels, now, envelope)
    await store.mark_committed(conn, [(rid, a) for _, _, rid, c in commits for a in c])
    await store.move_stock(conn, stock.net_changes())
    await store.set_statuses(conn, done, "committed")


def _commit(reservation: domain.Reservation, message: ShipmentDispatched) -> list[Allocation]:
    """The held units this shipment takes; none (with a warning) if nothing is held."""
    # in a run the runtime binds no record to the log context: name the order here
    if reservation.status != "held":
        log.warning(
            "inventory.shipment_not_held",
            status=reservation.status,
            shipment=message.shipment_id,
            order_id=message.order_id,
        )
        return []
    shipped = [
        domain.Line(item.line_id, item.sku, item.quantity)
        for package in message.packages
        for item in package.items
    ]
    committed = domain.to_commit(reservation.held, message.warehouse_id, shipped)
    if not committed:
        log.warning(
            "inventory.shipment_matches_nothing_held",
            shipment=message.shipment_id,
            order_id=message.order_id,
        )
    return committed
