"""Stock that moves after a reservation: release, commit, receipts serving backorders,
and the level event every change emits. Pure: no I/O, no asyncio."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from services.inventory.domain.model import Line, StockKey, StockLevel
from shared.schemas.events.inventory import Allocation, BackorderedLine, StockLevelChanged

# --- held allocations: release and commit ---


@dataclass(frozen=True)
class Held:
    """An allocation as stored: ``committed`` of its units have shipped."""

    line_id: str
    sku: str
    warehouse_id: str
    quantity: int
    committed: int = 0

    @property
    def outstanding(self) -> int:
        return self.quantity - self.committed


def to_release(held: Iterable[Held]) -> list[Allocation]:
    """Every unit still held (not shipped) goes back to stock."""
    return [
        Allocation(
            line_id=h.line_id, sku=h.sku, warehouse_id=h.warehouse_id, quantity=h.outstanding
        )
        for h in held
        if h.outstanding > 0
    ]


def to_commit(held: Iterable[Held], warehouse_id: str, shipped: Iterable[Line]) -> list[Allocation]:
    """The held units a shipment from ``warehouse_id`` takes: per line, what shipped, at
    most what is still held there. Units shipped beyond the reservation are ignored."""
    shipped_by_line: dict[tuple[str, str], int] = defaultdict(int)
    for item in shipped:
        shipped_by_line[(item.line_id, item.sku)] += item.quantity
    committed: list[Allocation] = []
    for h in held:
        if h.warehouse_id != warehouse_id:
            continue
        take = min(h.outstanding, shipped_by_line[(h.line_id, h.sku)])
        if take > 0:
            shipped_by_line[(h.line_id, h.sku)] -= take
            committed.append(
                Allocation(line_id=h.line_id, sku=h.sku, warehouse_id=warehouse_id, quantity=take)
            )
    return committed


@dataclass(frozen=True)
class Reservation:
    """An order's reservation as a shipment finds it: its status, its allocations, and
    whether units of it still wait on backorder."""

    reservation_id: str
    order_id: str
    status: str
    held: tuple[Held, ...] = ()
    backordered: bool = False

    def shipped(self, committed: Iterable[Allocation]) -> Reservation:
        """These held units left: the reservation is committed once no unit is left
        outstanding and none waits on backorder."""
        taken: dict[tuple[str, str], int] = defaultdict(int)
        for a in committed:
            taken[(a.line_id, a.warehouse_id)] += a.quantity
        held = tuple(
            replace(h, committed=h.committed + taken[(h.line_id, h.warehouse_id)])
            for h in self.held
        )
        after = replace(self, held=held)
        return replace(after, status="committed" if after.complete else self.status)

    @property
    def complete(self) -> bool:
        """No unit is left outstanding and none waits on backorder."""
        return not self.backordered and all(h.outstanding == 0 for h in self.held)


# --- receiving stock: backorders first ---


@dataclass(frozen=True)
class Backorder:
    """A backordered line as stored; ``seq`` is its place in the SKU's queue."""

    reservation_id: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    seq: int
    expected_restock_date: date | None = None

    def line(self, quantity: int | None = None) -> BackorderedLine:
        return BackorderedLine(
            line_id=self.line_id,
            sku=self.sku,
            quantity=self.quantity if quantity is None else quantity,
            expected_restock_date=self.expected_restock_date,
        )


@dataclass(frozen=True)
class Served:
    backorder: Backorder
    quantity: int

    @property
    def remaining(self) -> int:
        return self.backorder.quantity - self.quantity


def serve_backorders(queue: Iterable[Backorder], available: int) -> list[Served]:
    """Give received units to waiting backorders, oldest first; the last may be served
    in part. Returns only the backorders that get something."""
    served: list[Served] = []
    for backorder in sorted(queue, key=lambda b: b.seq):
        if available <= 0:
            break
        take = min(available, backorder.quantity)
        served.append(Served(backorder, take))
        available -= take
    return served


def received(level: StockLevel, quantity: int) -> StockLevel:
    return replace(level, on_hand=level.on_hand + quantity)


# --- stock.level_changed ---


@dataclass(frozen=True)
class LevelSnapshot:
    """A stock row after a change, with what the level event also carries."""

    level: StockLevel
    version: int
    backorderable: bool
    next_restock_date: date | None


def level_changed(snapshot: LevelSnapshot, *, now: datetime) -> StockLevelChanged:
    level = snapshot.level
    restock = snapshot.next_restock_date
    return StockLevelChanged(
        sku=level.sku,
        warehouse_id=level.warehouse_id,
        on_hand=level.on_hand,
        reserved=level.reserved,
        safety_stock=level.safety_stock,
        available=level.available,
        backorderable=snapshot.backorderable,
        next_restock_date=max(restock, now.date()) if restock else None,
        version=snapshot.version,
        occurred_at=now,
    )


class StockBook:
    """Stock rows locked for a run of records, moved in memory the way the database
    moves them one record at a time: every change of a row bumps its version, and yields
    the row's new snapshot for the level event."""

    def __init__(self, rows: Iterable[LevelSnapshot]) -> None:
        self._read = {row.level.key: row for row in rows}
        self._now = dict(self._read)

    def levels(self, skus: Collection[str]) -> list[StockLevel]:
        """Every row of these SKUs as it stands now, in (sku, warehouse_id) order."""
        return [row.level for key, row in sorted(self._now.items()) if key[0] in skus]

    def change(self, changes: Mapping[StockKey, tuple[int, int]]) -> list[LevelSnapshot]:
        """Apply (on_hand delta, reserved delta) per row; the changed rows' snapshots in
        (sku, warehouse_id) order (a row whose deltas are both 0 does not change)."""
        changed: list[LevelSnapshot] = []
        for key, (d_on_hand, d_reserved) in sorted(changes.items()):
            if d_on_hand == 0 and d_reserved == 0:
                continue
            row = self._now.get(key)
            if row is None:
                raise LookupError(f"no stock row for {key[0]} in {key[1]}")
            level = replace(
                row.level,
                on_hand=row.level.on_hand + d_on_hand,
                reserved=row.level.reserved + d_reserved,
            )
            self._now[key] = replace(row, level=level, version=row.version + 1)
            changed.append(self._now[key])
        return changed

    def net_changes(self) -> dict[StockKey, tuple[int, int, int]]:
        """Per changed row, in (sku, warehouse_id) order: (on_hand, reserved, version)
        deltas since the rows were read; what the database must apply to catch up."""
        return {
            key: (
                row.level.on_hand - self._read[key].level.on_hand,
                row.level.reserved - self._read[key].level.reserved,
                row.version - self._read[key].version,
            )
            for key, row in sorted(self._now.items())
            if row.version != self._read[key].version
        }
