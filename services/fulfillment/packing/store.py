"""The packing service's SQL (asyncpg, schema ``packing_service``).

One statement per pick task event: upsert the (order, warehouse) row with the task's
report and read back every task of the group. ``ON CONFLICT DO UPDATE`` applies to the
latest committed version of the row and locks it until commit, so the group read back
includes every report committed before — no lost "last task completed" between two
transactions — and nothing else can change it until this transaction ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.fulfillment.packing.domain import PickedLine, Task
from shared.schemas.events.fulfillment import Packed, PickingCompleted, PickTaskCreated


@dataclass(frozen=True)
class Group:
    """An (order, warehouse) as stored: its tasks, and what was packed if it was."""

    tasks: list[Task]
    packed: bool
    packed_task_ids: tuple[str, ...]


# A repeated report keeps the first one's values: the stored report wins the merge.
_REPORT = """
    INSERT INTO packings AS p (order_id, warehouse_id, tasks)
    VALUES ($1, $2, jsonb_build_object($3::text, $4::jsonb))
    ON CONFLICT (order_id, warehouse_id) DO UPDATE
        SET tasks = p.tasks || jsonb_build_object(
                $3::text, $4::jsonb || COALESCE(p.tasks -> $3::text, '{}'::jsonb)),
            updated_at = now()
    RETURNING tasks, status, task_ids"""


async def report_created(conn: asyncpg.Connection, message: PickTaskCreated) -> Group:
    """Note that the task exists; return its group, locked."""
    return await _report(conn, message, {"created_at": message.occurred_at.isoformat()})


async def report_completed(conn: asyncpg.Connection, message: PickingCompleted) -> Group:
    """Note what the task picked; return its group, locked."""
    report = {
        "completed_at": message.occurred_at.isoformat(),
        "picked": [item.model_dump() for item in message.picked],
        "short_line_ids": list(message.short_line_ids),
    }
    return await _report(conn, message, report)


async def _report(
    conn: asyncpg.Connection, message: PickTaskCreated | PickingCompleted, report: dict[str, Any]
) -> Group:
    row = await conn.fetchrow(
        _REPORT, message.order_id, message.warehouse_id, message.task_id, json.dumps(report)
    )
    assert row is not None
    tasks = json.loads(row["tasks"])
    return Group(
        tasks=[_task(task_id, tasks[task_id]) for task_id in sorted(tasks)],
        packed=row["status"] == "packed",
        packed_task_ids=tuple(row["task_ids"] or ()),
    )


def _task(task_id: str, report: dict[str, Any]) -> Task:
    picked = report.get("picked")
    return Task(
        task_id=task_id,
        created="created_at" in report,
        completed=picked is not None,
        picked=tuple(PickedLine(p["line_id"], p["sku"], p["quantity"]) for p in picked or ()),
    )


async def mark_packed(
    conn: asyncpg.Connection, packed: Packed, task_ids: list[str], packed_at: datetime
) -> bool:
    """Waiting → packed, with what was packed; False if it was packed already."""
    found = await conn.fetchval(
        """UPDATE packings
              SET status = 'packed', packing_id = $3, packed = $4::jsonb, task_ids = $5,
                  packed_at = $6, updated_at = now()
            WHERE order_id = $1 AND warehouse_id = $2 AND status = 'waiting'
           RETURNING 1""",
        packed.order_id,
        packed.warehouse_id,
        packed.packing_id,
        packed.model_dump_json(),
        task_ids,
        packed_at,
    )
    return found is not None
