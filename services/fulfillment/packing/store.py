"""The packing service's SQL (asyncpg, schema ``packing_service``).

A run of pick task events costs two statements: one upsert creates and locks the run's
(order, warehouse) rows and reads them back, one ``executemany`` writes them at the end.
``ON CONFLICT DO UPDATE`` applies to the latest committed version of a row and locks it
until commit, so what is read back includes every report committed before — no lost
"last task completed" between two transactions — and nothing else can change it until
this transaction ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from services.fulfillment.packing.domain import PickedLine, Task
from shared.schemas.events.fulfillment import Packed, PickingCompleted, PickTaskCreated

GroupKey = tuple[str, str]  # (order id, warehouse id)
Report = dict[str, Any]  # what picking reported about one task, as the row keeps it


@dataclass(frozen=True)
class Group:
    """An (order, warehouse) as stored: per task what picking reported, and what was
    packed if it was (``packing``: set by this transaction, still to be written)."""

    order_id: str
    warehouse_id: str
    reports: dict[str, Report]
    packed: bool
    packed_task_ids: tuple[str, ...]
    packing: tuple[Packed, datetime] | None = None

    @property
    def tasks(self) -> list[Task]:
        return [_task(task_id, self.reports[task_id]) for task_id in sorted(self.reports)]

    def noted(self, message: PickTaskCreated | PickingCompleted) -> Group:
        """With the message's report merged in; a repeated report keeps the first one's
        values (the stored report wins the merge)."""
        before = self.reports.get(message.task_id, {})
        reports = {**self.reports, message.task_id: {**_report(message), **before}}
        return replace(self, reports=reports)

    def packed_as(self, packed: Packed, task_ids: list[str], packed_at: datetime) -> Group:
        assert not self.packed, "packed once per (order, warehouse)"
        return replace(
            self, packed=True, packed_task_ids=tuple(task_ids), packing=(packed, packed_at)
        )


def _report(message: PickTaskCreated | PickingCompleted) -> Report:
    if isinstance(message, PickTaskCreated):
        return {"created_at": message.occurred_at.isoformat()}
    return {
        "completed_at": message.occurred_at.isoformat(),
        "picked": [item.model_dump() for item in message.picked],
        "short_line_ids": list(message.short_line_ids),
    }


def _task(task_id: str, report: Report) -> Task:
    picked = report.get("picked")
    return Task(
        task_id=task_id,
        created="created_at" in report,
        completed=picked is not None,
        picked=tuple(PickedLine(p["line_id"], p["sku"], p["quantity"]) for p in picked or ()),
    )


async def lock_groups(conn: asyncpg.Connection, keys: Iterable[GroupKey]) -> dict[GroupKey, Group]:
    """The groups, each created (waiting, no task) if none of its reports came before,
    locked in key order (two transactions locking several cannot deadlock on them)."""
    ordered = sorted(set(keys))
    rows = await conn.fetch(
        """INSERT INTO packings AS p (order_id, warehouse_id)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (order_id, warehouse_id) DO UPDATE SET updated_at = now()
           RETURNING order_id, warehouse_id, tasks::text AS tasks, status, task_ids""",
        [order_id for order_id, _ in ordered],
        [warehouse_id for _, warehouse_id in ordered],
    )
    return {
        (r["order_id"], r["warehouse_id"]): Group(
            order_id=r["order_id"],
            warehouse_id=r["warehouse_id"],
            reports=json.loads(r["tasks"]),
            packed=r["status"] == "packed",
            packed_task_ids=tuple(r["task_ids"] or ()),
        )
        for r in rows
    }


async def save_groups(conn: asyncpg.Connection, groups: Sequence[Group]) -> None:
    """The groups' reports, and what was packed where this transaction packed it; one
    pipelined round trip."""
    if groups:
        await conn.executemany(
            """UPDATE packings
                  SET tasks = $3::jsonb, updated_at = now(),
                      status = CASE WHEN $5::jsonb IS NULL THEN status ELSE 'packed' END,
                      packing_id = coalesce($4, packing_id),
                      packed = coalesce($5::jsonb, packed),
                      task_ids = coalesce($6, task_ids),
                      packed_at = coalesce($7, packed_at)
                WHERE order_id = $1 AND warehouse_id = $2""",
            [_save_args(g) for g in groups],
        )


def _save_args(group: Group) -> tuple[object, ...]:
    packed, packed_at = group.packing or (None, None)
    return (
        group.order_id,
        group.warehouse_id,
        json.dumps(group.reports),
        packed.packing_id if packed else None,
        packed.model_dump_json() if packed else None,
        list(group.packed_task_ids) if packed else None,
        packed_at,
    )
