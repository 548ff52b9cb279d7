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

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from services.inventory import domain, store
from shared.runtime.consumer import Batched, Handler, run_of
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ShipmentDispatched, ShortPicked
from shared.schemas.events.inventory import (
    Allocation,
    BackorderAllocated,
    BackorderedLine,
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
    """A shipment or short pick for an order this service never saw placed: dead-lettered,
    for a human."""


async def emit_levels(
    uow: UnitOfWork,
    snapshots: Sequence[domain.LevelSnapshot],
    now: datetime,
    cause: Envelope | None,
) -> None:
    for snapshot in snapshots:
        await uow.emit(domain.level_changed(snapshot, now=now), cause=cause)


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


async def on_short_picked(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Units a picker did not find: written off (not on the shelf), then allocated again
    for the order — nearest warehouse first, else backordered, else not supplied. Once
    per (order, task, line), however often the event comes."""
    assert isinstance(message, ShortPicked)
    conn = uow.conn
    short = domain.ShortPick(
        order_id=message.order_id,
        task_id=message.task_id,
        warehouse_id=message.warehouse_id,
        line_id=message.item.line_id,
        sku=message.item.sku,
        expected=message.item.quantity,
        picked=message.picked,
    )
    found = await store.lock_reservation_of_order(conn, short.order_id)
    if found is None:
        raise ReservationNotFound(f"order {short.order_id} has no reservation")
    reservation, ship_to = found
    if not await store.record_short_pick(conn, short, reservation.reservation_id):
        return  # this task's line was handled before
    if reservation.status != "held":
        # cancelled (and released) or never reserved: the order holds nothing to write off
        log.warning("inventory.short_pick_not_held", status=reservation.status, task=short.task_id)
        return
    stock = domain.StockBook(await store.lock_levels_of_skus(conn, {short.sku}))
    sku = (await store.load_skus(conn, {short.sku})).get(short.sku)
    may_backorder = {short.sku} if sku and sku.may_backorder else set()
    now = datetime.now(UTC)
    outcome = domain.settle_short_pick(
        short,
        reservation,
        ship_to,
        network=await store.load_network(conn),
        sku=sku,
        stock=stock,
        incoming=await store.incoming(conn, may_backorder),
        waiting=(await store.waiting_units(conn, may_backorder)).get(short.sku, 0),
        today=now.date(),
    )
    _log_short_pick(short, outcome)
    replacement = outcome.replacement
    await _book_short_pick(uow, reservation.reservation_id, short, outcome)
    await store.move_stock(conn, stock.net_changes())
    # the answer, also when nothing could be held or backordered (the line then ships
    # short): the order holds delivery until each short pick is answered
    still = await store.backorders_of(conn, reservation.reservation_id)
    allocated = BackorderAllocated(
        order_id=short.order_id,
        reservation_id=reservation.reservation_id,
        occurred_at=now,
        allocations=replacement.allocations,
        still_backordered=[b.line() for b in still],
        short_pick_task_id=short.task_id,
        short_pick_line_id=short.line_id,
    )
    await uow.emit(allocated, cause=envelope)
    await emit_levels(uow, outcome.levels, now, envelope)


async def _book_short_pick(
    uow: UnitOfWork, reservation_id: str, short: domain.ShortPick, outcome: domain.ShortPickOutcome
) -> None:
    """What a short pick decided, but stock: allocations, backorders, its record, status."""
    conn = uow.conn
    replacement = outcome.replacement
    if outcome.written_off:
        await store.write_off_allocation(conn, reservation_id, outcome.written_off)
    await store.add_allocations(conn, [(reservation_id, a) for a in replacement.allocations])
    await store.add_backorder_units(conn, reservation_id, replacement.backordered)
    await store.record_outcome(conn, short, outcome)
    if outcome.committed:
        await store.set_status(conn, reservation_id, "committed")


def _log_short_pick(short: domain.ShortPick, outcome: domain.ShortPickOutcome) -> None:
    if outcome.unheld:
        log.warning(
            "inventory.short_pick_not_held_there",
            task=short.task_id,
            line=short.line_id,
            warehouse=short.warehouse_id,
            missing=short.missing,
            booked=short.missing - outcome.unheld,
        )
    if outcome.replacement.unfillable:
        log.warning(
            "inventory.short_pick_unfillable",
            task=short.task_id,
            line=short.line_id,
            sku=short.sku,
            units=outcome.replacement.unfillable,
            detail="may not be backordered and no warehouse has them: the line ships short",
        )


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


HANDLERS: dict[str, Handler] = {
    OrderPlaced.TYPE: Batched(on_orders_placed),
    OrderCancelled.TYPE: on_order_cancelled,
    ShipmentDispatched.TYPE: Batched(on_shipments_dispatched),
    ShortPicked.TYPE: on_short_picked,
    ReceiveStock.TYPE: on_receive_stock,
    ReturnRestocked.TYPE: on_return_restocked,
}
