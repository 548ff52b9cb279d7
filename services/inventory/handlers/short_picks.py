"""Short picks: write the missing units off, then hold them again, backorder them, or
not supply them; one answer per short pick."""

from __future__ import annotations

from datetime import UTC, datetime

from services.inventory import domain, store
from services.inventory.handlers.common import ReservationNotFound, emit_levels
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ShortPicked
from shared.schemas.events.inventory import BackorderAllocated

log = get_logger(__name__)


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
