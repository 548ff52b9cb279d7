"""A pick task and the rules for a picker's confirmations. Pure.

A confirmation (a handheld scan, a ``picking.confirm_pick`` command, the simulated
picker) says: at ``location`` I took ``quantity`` units of ``sku`` — and, if it
``closes_item``, that there are no more (the rest of the line is *short*). It is
accepted only if it matches the task; a mis-pick changes nothing:

- the task must be released and open (not held in a trip, completed or cancelled);
- the SKU (and the line, if named) must be on the task and not yet done;
- the location must be the item's bin;
- no more units than remain on the line; zero only when reporting a shortage.

A line ends *picked* (every unit) or *short* (fewer found: the missing units are
backordered). When every line has ended, the task is completed — once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from shared.schemas.common import Reason


class TaskStatus(StrEnum):
    HELD = "held"  # waiting in a batch or wave, invisible to pickers
    RELEASED = "released"
    PICKING = "picking"  # at least one confirmation accepted
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # the order was cancelled before the task completed


OPEN = frozenset({TaskStatus.RELEASED, TaskStatus.PICKING})


@dataclass(frozen=True)
class TaskItem:
    line_id: str
    sku: str
    location: str
    quantity: int
    picked: int = 0
    short: bool = False

    @property
    def done(self) -> bool:
        return self.short or self.picked >= self.quantity

    @property
    def remaining(self) -> int:
        return 0 if self.done else self.quantity - self.picked

    @property
    def status(self) -> Literal["open", "picked", "short"]:
        if self.short:
            return "short"
        return "picked" if self.done else "open"


@dataclass(frozen=True)
class Task:
    task_id: str
    order_id: str
    warehouse_id: str
    status: TaskStatus
    items: tuple[TaskItem, ...]

    @property
    def all_done(self) -> bool:
        return all(item.done for item in self.items)


@dataclass(frozen=True)
class Scan:
    sku: str
    location: str | None  # None: a shortage reported at the item's own bin
    quantity: int
    picker_id: str
    line_id: str | None = None
    closes_item: bool = False


RejectionKind = Literal["mispick", "conflict", "not_found"]


@dataclass(frozen=True)
class Rejected:
    code: str
    message: str
    kind: RejectionKind
    field: str | None = None

    @property
    def reason(self) -> Reason:
        return Reason(code=self.code, message=self.message, field=self.field)


@dataclass(frozen=True)
class Accepted:
    task: Task  # after the confirmation
    item: TaskItem  # after the confirmation
    units: int  # taken by this confirmation

    @property
    def line_ended(self) -> bool:
        return self.item.done

    @property
    def completed(self) -> bool:
        return self.task.status == TaskStatus.COMPLETED


def task_not_found(task_id: str) -> Rejected:
    return Rejected("task_not_found", f"there is no pick task {task_id}", "not_found")


def _refuse_closed(task: Task) -> Rejected | None:
    if task.status == TaskStatus.HELD:
        return Rejected("task_not_released", "the task waits for its batch or wave", "conflict")
    if task.status == TaskStatus.CANCELLED:
        return Rejected("task_cancelled", "the order was cancelled: put the items back", "conflict")
    if task.status == TaskStatus.COMPLETED:
        return Rejected("task_completed", "the task is already completed", "conflict")
    return None


def _find_item(task: Task, scan: Scan) -> TaskItem | Rejected:
    on_sku = [i for i in task.items if i.sku == scan.sku]
    if scan.line_id is not None:
        line = [i for i in task.items if i.line_id == scan.line_id]
        if not line:
            return Rejected(
                "line_not_on_task", f"line {scan.line_id} is not on this task", "mispick", "line_id"
            )
        if line[0].sku != scan.sku:
            message = f"line {scan.line_id} is {line[0].sku}, not {scan.sku}"
            return Rejected("sku_not_on_task", message, "mispick", "sku")
        on_sku = line
    if not on_sku:
        return Rejected("sku_not_on_task", f"{scan.sku} is not on this task", "mispick", "sku")
    still_open = [i for i in on_sku if not i.done]
    if not still_open:
        message = f"{scan.sku} is already {on_sku[0].status} on this task"
        return Rejected("item_already_done", message, "conflict", "sku")
    return still_open[0]


def confirm(task: Task, scan: Scan) -> Accepted | Rejected:
    """Apply one confirmation to the task, or say why it is refused (nothing changes)."""
    refused = _refuse_closed(task)
    if refused is not None:
        return refused
    item = _find_item(task, scan)
    if isinstance(item, Rejected):
        return item
    if scan.location is not None and scan.location != item.location:
        message = f"{item.sku} is picked from {item.location}, not {scan.location}"
        return Rejected("wrong_location", message, "mispick", "location")
    if scan.quantity < 0 or scan.quantity > item.remaining:
        message = f"{scan.quantity} unit(s) scanned, {item.remaining} remain on line {item.line_id}"
        return Rejected("too_many_units", message, "mispick", "quantity")
    if scan.quantity == 0 and not scan.closes_item:
        return Rejected("nothing_scanned", "a scan takes at least one unit", "mispick", "quantity")
    picked = item.picked + scan.quantity
    after = replace(item, picked=picked, short=scan.closes_item and picked < item.quantity)
    items = tuple(after if i is item else i for i in task.items)
    status = TaskStatus.COMPLETED if all(i.done for i in items) else TaskStatus.PICKING
    return Accepted(replace(task, items=items, status=status), after, scan.quantity)


@dataclass(frozen=True)
class Completion:
    picked: list[TaskItem]  # lines with at least one unit picked
    short_line_ids: list[str]


def completion(task: Task) -> Completion:
    """What goes to packing: the units actually picked per line, and the short lines."""
    assert task.all_done, "a task completes only when every line has ended"
    return Completion(
        picked=[i for i in task.items if i.picked > 0],
        short_line_ids=[i.line_id for i in task.items if i.short],
    )
