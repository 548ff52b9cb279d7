"""Inventory rules, pure: the model and proximity, allocation, stock movements.

See docs/inventory.md for the rules in prose.
"""

from services.inventory.domain.allocation import (
    Failed,
    Reserved,
    allocate,
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
    Served,
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
    "Reserved",
    "Served",
    "ShipTo",
    "Sku",
    "StockKey",
    "StockLevel",
    "Warehouse",
    "allocate",
    "level_changed",
    "received",
    "reservation_id_for",
    "restock_date",
    "serve_backorders",
    "stock_changes",
    "to_commit",
    "to_release",
]
