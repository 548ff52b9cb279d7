"""The picking service's SQL (asyncpg only).

Lock order, per transaction: the order's row (``orders``) first, then the warehouse's
open trip, then task rows in task id order. The release job and the simulated picker
take trips and tasks with ``SKIP LOCKED``, so instances never wait on each other there.
"""

from services.fulfillment.picking.store.confirmations import ConfirmationRow
from services.fulfillment.picking.store.confirmations import find as find_confirmations
from services.fulfillment.picking.store.confirmations import insert_many as insert_confirmations
from services.fulfillment.picking.store.orders import (
    Round,
    claim_unplanned,
    note_cancelled,
    note_confirmed,
    note_round,
)
from services.fulfillment.picking.store.tasks import (
    StoredTask,
    cancel_unfinished,
    claim_for_picker,
    insert_completions,
    insert_task,
    load_tasks,
    oldest_waiting,
    open_tasks,
    release_held,
    save_progress,
)
from services.fulfillment.picking.store.trips import (
    has_order,
    insert_trip,
    lock_due,
    lock_open_trip,
    mark_released,
    next_deadline,
    set_order_count,
)

__all__ = [
    "ConfirmationRow",
    "Round",
    "StoredTask",
    "cancel_unfinished",
    "claim_for_picker",
    "claim_unplanned",
    "find_confirmations",
    "has_order",
    "insert_completions",
    "insert_confirmations",
    "insert_task",
    "insert_trip",
    "load_tasks",
    "lock_due",
    "lock_open_trip",
    "mark_released",
    "next_deadline",
    "note_cancelled",
    "note_confirmed",
    "note_round",
    "oldest_waiting",
    "open_tasks",
    "release_held",
    "save_progress",
    "set_order_count",
]
