"""Pick tasks and their items: insert, load (locked), release, progress, completion."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.fulfillment.picking.domain import PlannedTask, Task, TaskItem, TaskStatus
from shared.schemas.events.fulfillment import PickingStrategy


@dataclass(frozen=True)
class StoredTask:
    """A task with what its events and the handheld API show besides the rules' view."""

    task: Task
    round_id: str
    reservation_id: str
    strategy: PickingStrategy
    zone: str | None
    trip_id: str | None
    created_at: datetime
    released_at: datetime | None


@dataclass(frozen=True)
class NewTask:
    planned: PlannedTask
    reservation_id: str
    status: TaskStatus
    trip_id: str | None


async def insert_tasks(conn: asyncpg.Connection, tasks: Sequence[NewTask], now: datetime) -> None:
    """Each task with its items; one pipelined round trip. A task that exists already is
    left as it is."""
    if not tasks:
        return
    await conn.executemany(
        """WITH task AS (
               INSERT INTO tasks (task_id, order_id, warehouse_id, zone, round_id,
                                  reservation_id, strategy, trip_id, status, created_at,
                                  released_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT DO NOTHING RETURNING task_id)
           INSERT INTO task_items (task_id, line_id, sku, location, quantity)
           SELECT task.task_id, u.* FROM task,
                  unnest($12::text[], $13::text[], $14::text[], $15::int[]) AS u""",
        [_task_values(t, now) for t in tasks],
    )


def _task_values(new: NewTask, now: datetime) -> tuple[object, ...]:
    planned, lines = new.planned, new.planned.lines
    return (
        *(planned.task_id, planned.order_id, planned.warehouse_id, planned.zone or ""),
        *(planned.round_id, new.reservation_id, planned.strategy, new.trip_id),
        *(new.status.value, now, now if new.status == TaskStatus.RELEASED else None),
        [p.line_id for p in lines],
        [p.sku for p in lines],
        [p.location for p in lines],
        [p.quantity for p in lines],
    )


_TASK_COLUMNS = """task_id, order_id, warehouse_id, status, round_id, reservation_id, strategy,
                   zone, trip_id, created_at, released_at"""


_ITEM_COLUMNS = "i.line_id, i.sku, i.location, i.quantity, i.picked, i.short"


async def _with_items(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[StoredTask]:
    items = await conn.fetch(
        f"""SELECT i.task_id, {_ITEM_COLUMNS} FROM task_items i
            WHERE i.task_id = ANY($1::text[]) ORDER BY i.task_id, i.location, i.line_id""",
        [r["task_id"] for r in rows],
    )
    return _stored(rows, items)


def _stored(rows: Sequence[asyncpg.Record], items: Sequence[asyncpg.Record]) -> list[StoredTask]:
    """The tasks of ``rows`` (one row per task, or per item), with their ``items``."""
    by_task: dict[str, list[TaskItem]] = defaultdict(list)
    for i in items:
        by_task[i["task_id"]].append(
            TaskItem(i["line_id"], i["sku"], i["location"], i["quantity"], i["picked"], i["short"])
        )
    tasks = {r["task_id"]: r for r in rows}  # one per task, in the rows' order
    return [
        StoredTask(
            task=Task(
                r["task_id"],
                r["order_id"],
                r["warehouse_id"],
                TaskStatus(r["status"]),
                tuple(by_task[r["task_id"]]),
            ),
            round_id=r["round_id"],
            reservation_id=r["reservation_id"],
            strategy=r["strategy"],
            zone=r["zone"] or None,
            trip_id=r["trip_id"],
            created_at=r["created_at"],
            released_at=r["released_at"],
        )
        for r in tasks.values()
    ]


async def load_tasks(
    conn: asyncpg.Connection, task_ids: Iterable[str], *, lock: bool = False
) -> dict[str, StoredTask]:
    """The tasks (with items) by id; ``lock``: row-locked in id order, until commit."""
    rows = await conn.fetch(
        f"""SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ANY($1::text[])
            ORDER BY task_id {"FOR UPDATE" if lock else ""}""",
        sorted(set(task_ids)),
    )
    return {t.task.task_id: t for t in await _with_items(conn, rows)}


async def open_tasks(
    conn: asyncpg.Connection, warehouse_id: str, statuses: Sequence[TaskStatus], limit: int
) -> list[StoredTask]:
    rows = await conn.fetch(
        f"""SELECT {_TASK_COLUMNS} FROM tasks
            WHERE warehouse_id = $1 AND status = ANY($2::text[])
            ORDER BY released_at NULLS LAST, created_at, task_id LIMIT $3""",
        warehouse_id,
        [s.value for s in statuses],
        limit,
    )
    return await _with_items(conn, rows)


async def release_held(
    conn: asyncpg.Connection, trip_ids: Sequence[str], now: datetime
) -> dict[str, list[StoredTask]]:
    """Release the trips' held tasks (a cancelled order's stay cancelled); per trip, the
    tasks released, in task id order."""
    if not trip_ids:
        return {}
    rows = await conn.fetch(
        f"""WITH released AS (
                UPDATE tasks SET status = 'released', released_at = $2, updated_at = $2
                WHERE trip_id = ANY($1::text[]) AND status = 'held'
                RETURNING {_TASK_COLUMNS})
            SELECT r.*, {_ITEM_COLUMNS} FROM released r JOIN task_items i USING (task_id)
            ORDER BY r.task_id, i.location, i.line_id""",
        list(trip_ids),
        now,
    )
    by_trip: dict[str, list[StoredTask]] = {trip_id: [] for trip_id in trip_ids}
    for stored in _stored(rows, rows):
        assert stored.trip_id is not None
        by_trip[stored.trip_id].append(stored)
    return by_trip


async def cancel_unfinished(
    conn: asyncpg.Connection, order_id: str, now: datetime
) -> list[tuple[str, str, str]]:
    """Cancel the order's tasks not completed: (task id, warehouse, status it had)."""
    rows = await conn.fetch(
        """WITH unfinished AS (
               SELECT task_id, warehouse_id, status FROM tasks
                WHERE order_id = $1 AND status IN ('held', 'released', 'picking')
                ORDER BY task_id FOR UPDATE)
           UPDATE tasks t SET status = 'cancelled', updated_at = $2
             FROM unfinished u WHERE t.task_id = u.task_id
           RETURNING u.task_id, u.warehouse_id, u.status""",
        order_id,
        now,
    )
    return sorted((r["task_id"], r["warehouse_id"], r["status"]) for r in rows)


async def save_progress(conn: asyncpg.Connection, tasks: Sequence[Task], now: datetime) -> None:
    """Write the tasks' status and every item's picked/short, a statement each."""
    if not tasks:
        return
    await conn.execute(
        """UPDATE tasks t SET status = u.status, updated_at = $3
           FROM unnest($1::text[], $2::text[]) AS u (task_id, status)
           WHERE t.task_id = u.task_id""",
        [t.task_id for t in tasks],
        [t.status.value for t in tasks],
        now,
    )
    items = [(t.task_id, i) for t in tasks for i in t.items]
    await conn.execute(
        """UPDATE task_items ti SET picked = u.picked, short = u.short
           FROM unnest($1::text[], $2::text[], $3::int[], $4::bool[])
                AS u (task_id, line_id, picked, short)
           WHERE ti.task_id = u.task_id AND ti.line_id = u.line_id
             AND (ti.picked, ti.short) IS DISTINCT FROM (u.picked, u.short)""",
        [task_id for task_id, _ in items],
        [i.line_id for _, i in items],
        [i.picked for _, i in items],
        [i.short for _, i in items],
    )


async def insert_completions(
    conn: asyncpg.Connection, completed: Sequence[tuple[str, Sequence[str]]], now: datetime
) -> set[str]:
    """(task id, short line ids) → the task ids completed now; a task completed before is
    left out, so ``picking.completed`` is emitted once."""
    if not completed:
        return set()
    rows = await conn.fetch(
        """INSERT INTO completions (task_id, short_line_ids, completed_at)
           SELECT task_id, ARRAY(SELECT jsonb_array_elements_text(shorts)), $3
           FROM unnest($1::text[], $2::jsonb[]) AS u (task_id, shorts)
           ON CONFLICT DO NOTHING RETURNING task_id""",
        [task_id for task_id, _ in completed],
        [json.dumps(list(shorts)) for _, shorts in completed],
        now,
    )
    return {r["task_id"] for r in rows}


# --- the simulated picker's queue ---


async def claim_for_picker(
    conn: asyncpg.Connection, released_before: datetime, limit: int
) -> list[str]:
    """Released tasks nobody started, released long enough ago, locked; tasks another
    instance holds are skipped, not waited for."""
    rows = await conn.fetch(
        """SELECT task_id FROM tasks WHERE status = 'released' AND released_at <= $1
           ORDER BY released_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        released_before,
        limit,
    )
    return [r["task_id"] for r in rows]


async def oldest_waiting(conn: asyncpg.Connection) -> datetime | None:
    released: datetime | None = await conn.fetchval(
        "SELECT min(released_at) FROM tasks WHERE status = 'released'"
    )
    return released
