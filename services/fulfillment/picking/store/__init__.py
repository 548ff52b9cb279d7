"""The picking service's SQL (asyncpg only).

Lock order, per transaction: the orders' rows (``orders``, in order id order) first,
then the warehouses' open trips (in warehouse and kind order), then task rows in task id
order. The release job and the simulated picker take trips and tasks with ``SKIP
LOCKED``, so instances never wait on each other there.
"""

from services.fulfillment.picking.store.confirmations import ConfirmationRow
from services.fulfillment.picking.store.confirmations import find as find_confirmations
from services.fulfillment.picking.store.confirmations import insert_many as insert_confirmations
from services.fulfillment.picking.store.orders import load_book, note_cancelled, save_book
from services.fulfillment.picking.store.tasks import (
    NewTask,
    StoredTask,
    cancel_unfinished,
    claim_for_picker,
    insert_completions,
    insert_tasks,
    load_tasks,
    oldest_waiting,
    open_tasks,
    release_held,
    save_progress,
)
from services.fulfillment.picking.store.trips import (
    insert_trips,
    lock_due,
    lock_open_trips,
    mark_released,
    next_deadline,
    update_trips,
)

__all__ = [
    "ConfirmationRow",
    "NewTask",
    "StoredTask",
    "cancel_unfinished",
    "claim_for_picker",
    "find_confirmations",
    "insert_completions",
    "insert_confirmations",
    "insert_tasks",
    "insert_trips",
    "load_book",
    "load_tasks",
    "lock_due",
    "lock_open_trips",
    "mark_released",
    "next_deadline",
    "note_cancelled",
    "oldest_waiting",
    "open_tasks",
    "release_held",
    "save_book",
    "save_progress",
    "update_trips",
]
