"""Reserving an order: one warehouse, else a split, else backorders, else nothing.
Pure: no I/O, no asyncio."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from services.inventory.domain.model import (
    Incoming,
    Line,
    Network,
    ShipTo,
    Sku,
    StockKey,
    StockLevel,
    Warehouse,
)
from services.inventory.domain.movements import LevelSnapshot, StockBook
from shared.schemas.events.inventory import (
    Allocation,
    BackorderedLine,
    ShortageCode,
    SkuShortage,
)

# --- backorders: when will the units come? ---


def restock_date(
    incoming: Iterable[Incoming], *, already_waiting: int, needed: int, today: date
) -> date | None:
    """The date by which expected receipts (any warehouse) cover the units already
    backordered plus ``needed`` — first come, first served. An overdue receipt is
    expected any day now: today. None if the receipts on record never cover them."""
    target = already_waiting + needed
    covered = 0
    for receipt in sorted(incoming, key=lambda r: r.expected_date):
        covered += receipt.quantity
        if covered >= target:
            return max(receipt.expected_date, today)
    return None


# --- reserving an order ---


@dataclass(frozen=True)
class Reserved:
    allocations: list[Allocation]
    backordered: list[BackorderedLine] = field(default_factory=list)


@dataclass(frozen=True)
class Failed:
    shortages: list[SkuShortage]


def allocate(
    lines: Sequence[Line],
    ship_to: ShipTo,
    *,
    network: Network,
    skus: Mapping[str, Sku],
    stock: Iterable[StockLevel],
    incoming: Iterable[Incoming] = (),
    waiting: Mapping[str, int] | None = None,
    today: date,
) -> Reserved | Failed:
    """Reserve every line or nothing.

    1. One warehouse that can ship the whole order, nearest first.
    2. Else line by line, each from the nearest warehouses that have it (a split).
    3. Units still missing are backordered if the SKU allows it (not if discontinued),
       with the date expected receipts cover them; otherwise the order fails with one
       shortage per SKU and nothing is held.
    ``waiting``: units per SKU already backordered by earlier orders (they come first).
    """
    waiting = waiting or {}
    stock = list(stock)
    available: dict[StockKey, int] = {level.key: level.available for level in stock}
    ranked = network.ranked(ship_to)
    demand: dict[str, int] = defaultdict(int)
    for line in lines:
        demand[line.sku] += line.quantity

    unknown = [sku for sku in demand if sku not in skus]
    if not unknown:
        for warehouse in ranked:
            if all(
                available.get((sku, warehouse.warehouse_id), 0) >= qty
                for sku, qty in demand.items()
            ):
                return Reserved(
                    [
                        Allocation(
                            line_id=line.line_id,
                            sku=line.sku,
                            warehouse_id=warehouse.warehouse_id,
                            quantity=line.quantity,
                        )
                        for line in lines
                    ]
                )

    allocations: list[Allocation] = []
    backordered: list[BackorderedLine] = []
    missing: dict[str, int] = defaultdict(int)
    incoming_by_sku: dict[str, list[Incoming]] = defaultdict(list)
    for receipt in incoming:
        incoming_by_sku[receipt.sku].append(receipt)
    queued: dict[str, int] = defaultdict(int)  # backordered by this order so far
    for line in lines:
        if line.sku not in skus:
            continue
        taken, remaining = split_line(line, ranked, available)
        allocations += taken
        if remaining == 0:
            continue
        sku = skus[line.sku]
        if sku.may_backorder:
            expected = restock_date(
                incoming_by_sku[line.sku],
                already_waiting=waiting.get(line.sku, 0) + queued[line.sku],
                needed=remaining,
                today=today,
            )
            queued[line.sku] += remaining
            backordered.append(
                BackorderedLine(
                    line_id=line.line_id,
                    sku=line.sku,
                    quantity=remaining,
                    expected_restock_date=expected,
                )
            )
        else:
            missing[line.sku] += remaining

    if unknown or missing:
        free = _total_available(stock)
        shortages = [
            _shortage(sku, demand[sku], free.get(sku, 0), skus.get(sku))
            for sku in demand
            if sku in unknown or sku in missing
        ]
        return Failed(shortages)
    return Reserved(allocations, backordered)


def split_line(
    line: Line, ranked: Sequence[Warehouse], available: dict[StockKey, int]
) -> tuple[list[Allocation], int]:
    """Take the line from the warehouses in ``ranked`` order, each as far as it has it
    (``available`` goes down by what is taken); the allocations and the units missing."""
    allocations: list[Allocation] = []
    remaining = line.quantity
    for warehouse in ranked:
        key = (line.sku, warehouse.warehouse_id)
        take = min(remaining, available.get(key, 0))
        if take > 0:
            available[key] -= take
            remaining -= take
            allocations.append(
                Allocation(
                    line_id=line.line_id,
                    sku=line.sku,
                    warehouse_id=warehouse.warehouse_id,
                    quantity=take,
                )
            )
        if remaining == 0:
            break
    return allocations, remaining


@dataclass(frozen=True)
class Placement:
    """A placed order to reserve: its lines and where it ships."""

    lines: Sequence[Line]
    ship_to: ShipTo

    @property
    def skus(self) -> set[str]:
        return {line.sku for line in self.lines}


def reserve_in_turn(
    placements: Sequence[Placement],
    *,
    network: Network,
    skus: Mapping[str, Sku],
    stock: StockBook,
    incoming: Iterable[Incoming] = (),
    waiting: Mapping[str, int] | None = None,
    today: date,
) -> list[tuple[Reserved | Failed, list[LevelSnapshot]]]:
    """Allocate each placement as if it came alone, in the order given: each sees the
    stock (moved in ``stock``) and the backorder queue the ones before it left. With each
    decision, the stock rows it changed.

    ``skus``, ``incoming``, ``waiting``: as for :func:`allocate`, for every SKU of the
    placements (``incoming`` and ``waiting`` are only read for SKUs that may backorder).
    """
    waiting = dict(waiting or {})
    incoming = list(incoming)
    outcomes: list[tuple[Reserved | Failed, list[LevelSnapshot]]] = []
    for placement in placements:
        decision = allocate(
            placement.lines,
            placement.ship_to,
            network=network,
            skus=skus,
            stock=stock.levels(placement.skus),
            incoming=incoming,
            waiting=waiting,
            today=today,
        )
        if isinstance(decision, Failed):
            outcomes.append((decision, []))
            continue
        for line in decision.backordered:
            waiting[line.sku] = waiting.get(line.sku, 0) + line.quantity
        outcomes.append((decision, stock.change(stock_changes(decision.allocations, reserved=1))))
    return outcomes


def _total_available(stock: Iterable[StockLevel]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for level in stock:
        total[level.sku] += level.available
    return total


def _shortage(sku: str, requested: int, available: int, known: Sku | None) -> SkuShortage:
    code: ShortageCode
    if known is None:
        code, message = "unknown_sku", f"{sku} is not in the catalog"
    elif known.discontinued:
        code, message = "discontinued", f"{sku} is discontinued: only {available} left"
    elif available == 0:
        code, message = "out_of_stock", f"{sku} is out of stock and cannot be backordered"
    else:
        code = "not_backorderable"
        message = f"only {available} of {requested} available; {sku} cannot be backordered"
    return SkuShortage(
        sku=sku, requested=requested, available=available, code=code, message=message
    )


def stock_changes(
    allocations: Iterable[Allocation], *, on_hand: int = 0, reserved: int = 0
) -> dict[StockKey, tuple[int, int]]:
    """Per stock row, (on_hand delta, reserved delta) for moving these units; the signs
    say the direction (reserve: reserved=+1; release: reserved=-1; commit: both -1)."""
    changes: dict[StockKey, tuple[int, int]] = {}
    for a in allocations:
        d_on_hand, d_reserved = changes.get((a.sku, a.warehouse_id), (0, 0))
        changes[(a.sku, a.warehouse_id)] = (
            d_on_hand + on_hand * a.quantity,
            d_reserved + reserved * a.quantity,
        )
    return changes
