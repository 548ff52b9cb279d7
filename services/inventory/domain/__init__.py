"""Inventory rules, pure: the model and proximity, allocation, stock movements.

See docs/inventory.md for the rules in prose.
"""

from services.inventory.domain.allocation import (
    Failed,
    Placement,
    Reserved,
    allocate,
    reserve_in_turn,
    restock_date,
    stock_changes,
)
from services.inventory.domain.model import (
    RESERVATION_NAMESPACE,
    Incoming,
    Line,
    Network,
    ShipTo,
    Sku,
    StockKey,
    StockLevel,
    Warehouse,
    reservation_id_for,
)
from services.inventory.domain.movements import (
    Backorder,
    Held,
    LevelSnapshot,
    Reservation,
    Served,
    StockBook,
    level_changed,
    received,
    serve_backorders,
    to_commit,
    to_release,
)

__all__ = [
    "RESERVATION_NAMESPACE",
    "Backorder",
    "Failed",
    "Held",
    "Incoming",
    "LevelSnapshot",
    "Line",
    "Network",
    "Placement",
    "Reservation",
    "Reserved",
    "Served",
    "ShipTo",
    "Sku",
    "StockBook",
    "StockKey",
    "StockLevel",
    "Warehouse",
    "allocate",
    "level_changed",
    "received",
    "reservation_id_for",
    "reserve_in_turn",
    "restock_date",
    "serve_backorders",
    "stock_changes",
    "to_commit",
    "to_release",
]
