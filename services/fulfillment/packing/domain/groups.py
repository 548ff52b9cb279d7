"""An order's pick tasks at one warehouse, in groups by allocation round, as a run notes
picking's reports in memory. Pure.

A group — (order, warehouse, round) — is packed once, when every task created for it has
completed. A task's round comes with its creation (``task_created.backorder_round``, None
for the order's reservation); a completion names only its task. So a completion whose
task's creation has not arrived is *early*: its round is unknown, it holds back every
group of the order at that warehouse not packed yet, and it joins its task's group when
the creation comes. A task stays in the group of its first creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.fulfillment.packing.domain.model import PickedLine, Task, all_tasks_completed
from shared.schemas.events.fulfillment import (
    NothingPicked,
    Packed,
    PickingCompleted,
    PickTaskCreated,
)

Report = dict[str, Any]  # what picking reported about one task, as the row keeps it
TaskReport = PickTaskCreated | PickingCompleted
Round = str | None  # a backorder round's id; None: the order's reservation


def report_of(message: TaskReport) -> Report:
    if isinstance(message, PickTaskCreated):
        return {"created_at": message.occurred_at.isoformat()}
    return {
        "completed_at": message.occurred_at.isoformat(),
        "picked": [item.model_dump() for item in message.picked],
        "short_line_ids": list(message.short_line_ids),
    }


def _merged(first: Report | None, later: Report) -> Report:
    """A repeated report keeps the first one's values."""
    return {**later, **(first or {})}


def _task(task_id: str, report: Report) -> Task:
    picked = report.get("picked")
    return Task(
        task_id=task_id,
        created="created_at" in report,
        completed=picked is not None,
        picked=tuple(PickedLine(p["line_id"], p["sku"], p["quantity"]) for p in picked or ()),
    )


@dataclass(frozen=True)
class Group:
    """The tasks packed together, with what picking reported about each, and what was
    packed if it was (``packing``: packed by this run, still to be written)."""

    order_id: str
    warehouse_id: str
    backorder_round: Round
    reports: dict[str, Report]
    packed: bool = False  # closed: packed, or with nothing picked, nothing to pack
    packed_task_ids: tuple[str, ...] = ()
    packing: tuple[Packed | NothingPicked, datetime] | None = None

    @property
    def tasks(self) -> list[Task]:
        return [_task(task_id, self.reports[task_id]) for task_id in sorted(self.reports)]

    @property
    def ready(self) -> bool:
        return not self.packed and all_tasks_completed(self.tasks)

    def noted(self, task_id: str, report: Report) -> Group:
        """With the report merged in (the stored report wins the merge)."""
        merged = _merged(self.reports.get(task_id), report)
        return replace(self, reports={**self.reports, task_id: merged})

    def came_after_packing(self, task_id: str) -> bool:
        return self.packed and task_id not in self.packed_task_ids

    @property
    def short_picks(self) -> list[tuple[str, str]]:
        """(task, line) of every line its completed tasks reported short."""
        return [
            (task_id, line_id)
            for task_id, report in sorted(self.reports.items())
            for line_id in report.get("short_line_ids") or ()
        ]

    def packed_as(self, packed: Packed | NothingPicked, packed_at: datetime) -> Group:
        assert not self.packed, "packed once per group"
        task_ids = tuple(sorted(self.reports))
        return replace(self, packed=True, packed_task_ids=task_ids, packing=(packed, packed_at))


@dataclass(frozen=True)
class Noted:
    group: Group | None  # the task's group with the report in it; None: an early completion
    after_packing: bool  # the task is not one its (already packed) group packed
    ready: list[Group]  # the groups this report let be packed, reservation first


def _round_order(round_: Round) -> tuple[bool, str]:
    return round_ is not None, round_ or ""


@dataclass
class OrderAtWarehouse:
    """An order's groups at one warehouse, by round, and its early completions (task id →
    report): what a run locks and notes reports into as one, since an early completion
    may belong to any of the groups. ``changed``: rounds of the groups to write."""

    order_id: str
    warehouse_id: str
    groups: dict[Round, Group] = field(default_factory=dict)
    early: dict[str, Report] = field(default_factory=dict)
    changed: set[Round] = field(default_factory=set)
    early_changed: bool = False

    def note(self, message: TaskReport) -> Noted:
        task_id = message.task_id
        group = self._group_of(task_id)
        if group is None and isinstance(message, PickingCompleted):
            self.early[task_id] = _merged(self.early.get(task_id), report_of(message))
            self.early_changed = True
            return Noted(None, after_packing=False, ready=[])
        if group is None:
            assert isinstance(message, PickTaskCreated)
            round_ = message.backorder_round or None
            group = self.groups.get(round_) or Group(self.order_id, self.warehouse_id, round_, {})
        found = self.early.pop(task_id, None)
        if found is not None:  # the creation an early completion waited for
            self.early_changed = True
            group = group.noted(task_id, found)
        group = group.noted(task_id, report_of(message))
        self._keep(group)
        # the last early completion found its group: every group it held back may be ready
        looked_at = self.rounds() if found is not None else [group.backorder_round]
        ready = [] if self.early else [g for r in looked_at if (g := self.groups[r]).ready]
        return Noted(group, group.came_after_packing(task_id), ready)

    def packed(self, round_: Round, packed: Packed | NothingPicked, packed_at: datetime) -> None:
        self._keep(self.groups[round_].packed_as(packed, packed_at))

    def rounds(self) -> list[Round]:
        """The groups' rounds: the reservation first, then the backorder rounds by id."""
        return sorted(self.groups, key=_round_order)

    def changed_groups(self) -> list[Group]:
        return [self.groups[r] for r in sorted(self.changed, key=_round_order)]

    def _group_of(self, task_id: str) -> Group | None:
        return next((g for g in self.groups.values() if task_id in g.reports), None)

    def _keep(self, group: Group) -> None:
        self.groups[group.backorder_round] = group
        self.changed.add(group.backorder_round)
