"""Turn a confirmed order's allocation rounds into tasks, and release tasks to pickers.

Runs inside a unit of work with the order's row locked. A task is released (emitted as
``picking.task_created``) at once by the single-order and zone strategies, or with its
trip by the batch and wave strategies. A new trip wakes the release job through NOTIFY;
released tasks wake the simulated picker through the outbox's own NOTIFY (every
transaction that emits something sends it at commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.fulfillment.picking import domain, store
from services.fulfillment.picking.domain import Layout, PlannedTask, TaskStatus
from services.fulfillment.picking.metrics import TASKS_RELEASED
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope
from shared.schemas.events.fulfillment import PickItem, PickTaskCreated

log = get_logger(__name__)

TRIP_OPENED = "trip_opened"  # NOTIFY payload


def wake_channel(schema: str) -> str:
    return f"{schema}_wakeups"


async def plan_round(
    uow: UnitOfWork, round_: store.Round, layout: Layout, now: datetime, cause: Envelope
) -> None:
    plan = domain.plan_tasks(round_.order_id, round_.round_id, round_.allocations, layout)
    for warehouse_id, sku in plan.unslotted:
        log.warning(
            "picking.sku_unslotted",
            warehouse_id=warehouse_id,
            sku=sku,
            location=layout.warehouse(warehouse_id).unslotted.location,
            hint="give the SKU a bin in the layout; until then it is picked from here",
        )
    for task in plan.tasks:
        if task.held_in_trip:
            await _hold_in_trip(uow, task, round_.reservation_id, layout, now)
            continue
        released = TaskStatus.RELEASED
        if await store.insert_task(uow.conn, task, round_.reservation_id, released, None, now):
            await uow.emit(_created(task, round_.reservation_id, None, now), cause=cause)
            TASKS_RELEASED.labels(task.strategy).inc()


async def _hold_in_trip(
    uow: UnitOfWork, task: PlannedTask, reservation_id: str, layout: Layout, now: datetime
) -> None:
    conn = uow.conn
    policy = domain.TripPolicy.of(layout.warehouse(task.warehouse_id))
    trip = await _open_trip(uow, policy, task, now)
    new_order = not await store.has_order(conn, trip.trip_id, task.order_id)
    if not await store.insert_task(conn, task, reservation_id, TaskStatus.HELD, trip.trip_id, now):
        return
    joined = domain.join(trip, policy, new_order=new_order, now=now)
    await store.set_order_count(conn, joined.trip)
    if joined.release:
        # the trip holds many orders' tasks: no one event caused its release
        await release_trip(uow, joined.trip, now, cause=None)


async def _open_trip(
    uow: UnitOfWork, policy: domain.TripPolicy, task: PlannedTask, now: datetime
) -> domain.Trip:
    """The warehouse's open trip of this kind, locked; opened by this task if none."""
    found = await store.lock_open_trip(uow.conn, task.warehouse_id, policy.kind)
    if found is not None:
        return found
    opened = domain.open_trip(policy, task.warehouse_id, task.task_id, now)
    if await store.insert_trip(uow.conn, opened):
        await uow.conn.execute("SELECT pg_notify($1, $2)", wake_channel(uow.schema), TRIP_OPENED)
    found = await store.lock_open_trip(uow.conn, task.warehouse_id, policy.kind)
    assert found is not None, "an open trip exists: ours, or the one that won the race"
    return found


async def release_trip(
    uow: UnitOfWork, trip: domain.Trip, now: datetime, cause: Envelope | None
) -> None:
    """Release every held task of the trip together, and close the trip."""
    released = await store.release_held(uow.conn, trip.trip_id, now)
    await store.mark_released(uow.conn, trip.trip_id, now)
    log.info(
        "picking.trip_released",
        trip_id=trip.trip_id,
        kind=trip.kind,
        warehouse_id=trip.warehouse_id,
        tasks=len(released),
        orders=trip.order_count,
        late_s=round(max((now - trip.closes_at).total_seconds(), 0.0), 3),
    )
    for stored in (await store.load_tasks(uow.conn, released)).values():
        await uow.emit(_created_from(stored, now), cause=cause)
        TASKS_RELEASED.labels(stored.strategy).inc()


def _created(
    task: PlannedTask, reservation_id: str, trip_id: str | None, now: datetime
) -> PickTaskCreated:
    return PickTaskCreated(
        order_id=task.order_id,
        occurred_at=now,
        task_id=task.task_id,
        warehouse_id=task.warehouse_id,
        reservation_id=reservation_id,
        items=_items(task.lines),
        strategy=task.strategy,
        trip_id=trip_id,
        zone=task.zone,
    )


def _created_from(stored: store.StoredTask, now: datetime) -> PickTaskCreated:
    task = stored.task
    return PickTaskCreated(
        order_id=task.order_id,
        occurred_at=now,
        task_id=task.task_id,
        warehouse_id=task.warehouse_id,
        reservation_id=stored.reservation_id,
        items=_items(task.items),
        strategy=stored.strategy,
        trip_id=stored.trip_id,
        zone=stored.zone,
    )


def _items(lines: Sequence[domain.PickLine] | Sequence[domain.TaskItem]) -> list[PickItem]:
    return [
        PickItem(line_id=i.line_id, sku=i.sku, quantity=i.quantity, location=i.location)
        for i in lines
    ]
