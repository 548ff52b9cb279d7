"""Inventory rules, pure: the model and proximity, allocation, stock movements, short
picks.

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
from services.inventory.domain.short_picks import (
    Replacement,
    ShortPick,
    ShortPickOutcome,
    replace_units,
    settle_short_pick,
    write_off,
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
    "Replacement",
    "Reservation",
    "Reserved",
    "Served",
    "ShipTo",
    "ShortPick",
    "ShortPickOutcome",
    "Sku",
    "StockBook",
    "StockKey",
    "StockLevel",
    "Warehouse",
    "allocate",
    "level_changed",
    "received",
    "replace_units",
    "reservation_id_for",
    "reserve_in_turn",
    "restock_date",
    "serve_backorders",
    "settle_short_pick",
    "stock_changes",
    "to_commit",
    "to_release",
    "write_off",
]
