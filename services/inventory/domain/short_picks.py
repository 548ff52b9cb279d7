"""A short pick: units a picker did not find are written off, then allocated again —
elsewhere or where they were, else backordered, else (a SKU that may not wait) not
supplied. Pure: no I/O, no asyncio."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from services.inventory.domain.allocation import restock_date, split_line, stock_changes
from services.inventory.domain.model import Incoming, Line, Network, ShipTo, Sku, StockLevel
from services.inventory.domain.movements import Held, LevelSnapshot, Reservation, StockBook
from shared.schemas.events.inventory import Allocation, BackorderedLine


@dataclass(frozen=True)
class ShortPick:
    """One line of one pick task found short: ``expected`` units, ``picked`` found."""

    order_id: str
    task_id: str
    warehouse_id: str
    line_id: str
    sku: str
    expected: int
    picked: int

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.picked)


def write_off(held: Iterable[Held], short: ShortPick) -> Allocation | None:
    """The missing units the order still holds of that line at that warehouse: they are
    not on the shelf. At most what is held there and not shipped; None if nothing is."""
    for h in held:
        if (h.line_id, h.sku, h.warehouse_id) != (short.line_id, short.sku, short.warehouse_id):
            continue
        quantity = min(short.missing, h.outstanding)
        if quantity <= 0:
            return None
        return Allocation(
            line_id=h.line_id, sku=h.sku, warehouse_id=h.warehouse_id, quantity=quantity
        )
    return None


@dataclass(frozen=True)
class Replacement:
    """Where units written off come from instead. ``unfillable``: units neither allocated
    nor backordered (the SKU may not wait): the line ships short by them."""

    allocations: list[Allocation]
    backordered: list[BackorderedLine]
    unfillable: int = 0


def replace_units(
    line: Line,
    ship_to: ShipTo,
    *,
    network: Network,
    sku: Sku | None,
    stock: Iterable[StockLevel],
    incoming: Iterable[Incoming] = (),
    waiting: int = 0,
    today: date,
) -> Replacement:
    """Allocate ``line`` (the units written off) by the placement rules, for this line
    alone: the nearest warehouse that has them all, else a split nearest first (safety
    stock kept; the warehouse that was short counts like any other). What is still
    missing is backordered if the SKU may wait — dated after the ``waiting`` units already
    queued for it — and otherwise not supplied. Unlike a placement, a line that can be
    served only in part keeps that part."""
    if sku is None:
        return Replacement([], [], unfillable=line.quantity)
    available = {level.key: level.available for level in stock}
    ranked = network.ranked(ship_to)
    whole = [w for w in ranked if available.get((line.sku, w.warehouse_id), 0) >= line.quantity]
    allocations, remaining = split_line(line, whole[:1] or ranked, available)
    if remaining == 0:
        return Replacement(allocations, [])
    if not sku.may_backorder:
        return Replacement(allocations, [], unfillable=remaining)
    expected = restock_date(incoming, already_waiting=waiting, needed=remaining, today=today)
    backordered = BackorderedLine(
        line_id=line.line_id, sku=line.sku, quantity=remaining, expected_restock_date=expected
    )
    return Replacement(allocations, [backordered])


@dataclass(frozen=True)
class ShortPickOutcome:
    """What a short pick does to the order's reservation and to stock.

    ``unheld``: missing units the order did not hold there (an inconsistency: nothing is
    booked for them). ``levels``: the stock rows changed, in the order they changed.
    ``committed``: the reservation is done — every unit still held has shipped, none is
    waiting, and some did ship (a reservation left with nothing is not "committed")."""

    written_off: Allocation | None
    unheld: int
    replacement: Replacement
    levels: list[LevelSnapshot]
    committed: bool


def settle_short_pick(
    short: ShortPick,
    reservation: Reservation,
    ship_to: ShipTo,
    *,
    network: Network,
    sku: Sku | None,
    stock: StockBook,
    incoming: Iterable[Incoming] = (),
    waiting: int = 0,
    today: date,
) -> ShortPickOutcome:
    """Write off the missing units the reservation holds (on hand and reserved go down
    together: availability does not change), then allocate as many again (``stock``
    moves as the database must). ``reservation``: held, with its allocations."""
    written = write_off(reservation.held, short)
    levels = stock.change(stock_changes([written], on_hand=-1, reserved=-1)) if written else []
    if written is None:
        replacement = Replacement([], [])
    else:
        replacement = replace_units(
            Line(short.line_id, short.sku, written.quantity),
            ship_to,
            network=network,
            sku=sku,
            stock=stock.levels({short.sku}),
            incoming=incoming,
            waiting=waiting,
            today=today,
        )
        levels += stock.change(stock_changes(replacement.allocations, reserved=1))
    after = replace(
        reservation,
        held=(
            *_less(reservation.held, written),
            *(Held(a.line_id, a.sku, a.warehouse_id, a.quantity) for a in replacement.allocations),
        ),
        backordered=reservation.backordered or bool(replacement.backordered),
    )
    return ShortPickOutcome(
        written_off=written,
        unheld=short.missing - (written.quantity if written else 0),
        replacement=replacement,
        levels=levels,
        committed=after.complete and any(h.committed > 0 for h in after.held),
    )


def _less(held: Iterable[Held], written: Allocation | None) -> list[Held]:
    """The allocations after a write-off: one fewer by its units, gone if none is left."""
    result: list[Held] = []
    for h in held:
        if written and (h.line_id, h.warehouse_id) == (written.line_id, written.warehouse_id):
            h = replace(h, quantity=h.quantity - written.quantity)
        if h.quantity > 0:
            result.append(h)
    return result
