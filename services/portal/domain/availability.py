"""Available-to-promise per SKU, per warehouse and in total. Pure: no I/O.

Fed by ``stock.level_changed`` (keyed by SKU), which carries a version per SKU and
warehouse: an older or repeated level is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.schemas.events.inventory import StockLevelChanged


@dataclass(frozen=True)
class StockPosition:
    sku: str
    warehouse_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    available: int
    backorderable: bool
    next_restock_date: date | None
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class Availability:
    sku: str
    available: int
    on_hand: int
    reserved: int
    backorderable: bool
    next_restock_date: date | None
    warehouses: list[StockPosition]


def apply_level(current: StockPosition | None, event: StockLevelChanged) -> StockPosition | None:
    if current is not None and event.version <= current.version:
        return None
    return StockPosition(
        sku=event.sku,
        warehouse_id=event.warehouse_id,
        on_hand=event.on_hand,
        reserved=event.reserved,
        safety_stock=event.safety_stock,
        available=event.available,
        backorderable=event.backorderable,
        next_restock_date=event.next_restock_date,
        version=event.version,
        updated_at=event.occurred_at,
    )


def summarize(sku: str, positions: list[StockPosition]) -> Availability:
    """Totals over warehouses; the earliest restock date anywhere."""
    dates = [p.next_restock_date for p in positions if p.next_restock_date is not None]
    return Availability(
        sku=sku,
        available=sum(p.available for p in positions),
        on_hand=sum(p.on_hand for p in positions),
        reserved=sum(p.reserved for p in positions),
        backorderable=any(p.backorderable for p in positions),
        next_restock_date=min(dates) if dates else None,
        warehouses=sorted(positions, key=lambda p: p.warehouse_id),
    )
