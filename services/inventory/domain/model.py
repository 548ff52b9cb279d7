"""The inventory model: SKUs, warehouses, stock levels, expected receipts, order lines,
and which warehouse is nearest a ship-to address. Pure: no I/O, no asyncio."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

# Fixed forever: a replayed order.placed must find the same reservation.
RESERVATION_NAMESPACE = uuid.UUID("3b9d7e24-5f0a-5c61-8e2b-9a4c7d1f0e53")

StockKey = tuple[str, str]  # (sku, warehouse_id): also the lock order of stock rows


def reservation_id_for(order_id: str) -> str:
    """One reservation per order, with an id derived from the order id."""
    return str(uuid.uuid5(RESERVATION_NAMESPACE, order_id))


# --- the model ---


@dataclass(frozen=True)
class Sku:
    sku: str
    backorderable: bool = False
    discontinued: bool = False

    @property
    def may_backorder(self) -> bool:
        """Missing units may wait for stock (what is left of a discontinued SKU may not)."""
        return self.backorderable and not self.discontinued


@dataclass(frozen=True)
class Warehouse:
    """``region`` is a country code (``GB``) or a country subdivision (``US-NJ``)."""

    warehouse_id: str
    name: str
    region: str

    @property
    def country(self) -> str:
        return self.region.upper().split("-", 1)[0]


@dataclass(frozen=True)
class StockLevel:
    sku: str
    warehouse_id: str
    on_hand: int
    reserved: int = 0
    safety_stock: int = 0

    @property
    def key(self) -> StockKey:
        return (self.sku, self.warehouse_id)

    @property
    def available(self) -> int:
        """What may still be promised: on hand, minus reserved, minus safety stock."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)


@dataclass(frozen=True)
class Incoming:
    """Units expected at a warehouse on a date (a purchase order not yet received)."""

    sku: str
    warehouse_id: str
    quantity: int
    expected_date: date


@dataclass(frozen=True)
class Line:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShipTo:
    country: str
    region: str | None = None

    @property
    def subdivision(self) -> str | None:
        """ISO 3166-2 style ``<country>-<region>`` (``US-NJ``), if a region is given."""
        if not self.region or not self.region.strip():
            return None
        region = self.region.strip().upper()
        country = self.country.upper()
        return region if region.startswith(f"{country}-") else f"{country}-{region}"


# --- proximity ---


@dataclass(frozen=True)
class Network:
    """The warehouses and the configured region order (nearest first, per ship-to).

    ``region_order`` maps a ship-to subdivision (``US-CA``), country (``GB``) or ``*``
    (everyone else) to warehouse regions in order of preference; an entry ``US`` also
    matches warehouses in ``US-NJ``.
    """

    warehouses: Sequence[Warehouse]
    region_order: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def preference(self, ship_to: ShipTo) -> Sequence[str]:
        for key in (ship_to.subdivision, ship_to.country.upper(), "*"):
            if key and key in self.region_order:
                return self.region_order[key]
        return ()

    def ranked(self, ship_to: ShipTo) -> list[Warehouse]:
        """Nearest first: same subdivision, then same country, then everyone else; within
        each tier by the configured region order, then by warehouse id."""
        order = [entry.upper() for entry in self.preference(ship_to)]

        def position(warehouse: Warehouse) -> int:
            region = warehouse.region.upper()
            for i, entry in enumerate(order):
                if region == entry or region.startswith(f"{entry}-"):
                    return i
            return len(order)

        def rank(warehouse: Warehouse) -> tuple[int, int, str]:
            if ship_to.subdivision and warehouse.region.upper() == ship_to.subdivision:
                tier = 0
            elif warehouse.country == ship_to.country.upper():
                tier = 1
            else:
                tier = 2
            return (tier, position(warehouse), warehouse.warehouse_id)

        return sorted(self.warehouses, key=rank)
