"""Turn confirmed orders' allocation rounds into tasks, and release tasks to pickers.

Runs inside a unit of work with the orders' rows locked, a run of rounds at a time: the
rules are applied round by round in memory (tasks planned, held tasks joining the open
trips), then each table is written once and the events emitted in the order one by one
would have emitted them. A task is released (emitted as ``picking.task_created``) at
once by the single-order and zone strategies, or with its trip by the batch and wave
strategies. A new trip wakes the release job through NOTIFY; released tasks wake the
simulated picker through the outbox's own NOTIFY (every transaction that emits something
sends it at commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


class TripOpenedElsewhere(RuntimeError):
    """Another transaction opened a trip this run meant to open: the run is redone."""


@dataclass(frozen=True)
class ReleasedAlone:
    task: store.NewTask
    cause: Envelope


@dataclass(frozen=True)
class TripLeft:
    trip: domain.Trip


Release = ReleasedAlone | TripLeft


@dataclass
class RunPlan:
    """What planning a run's rounds decided: the tasks to insert, the trips, and the
    releases in the order they happened."""

    board: domain.TripBoard
    tasks: list[store.NewTask]
    releases: list[Release]


async def plan_rounds(
    uow: UnitOfWork,
    rounds: Sequence[tuple[domain.Round, Envelope]],
    book: domain.OrderBook,
    layout: Layout,
    now: datetime,
) -> None:
    """Plan the rounds (each with the event that let it be planned), in order."""
    plans = [(round_, _plan(round_, layout), cause) for round_, cause in rounds]
    kinds = {
        (task.warehouse_id, _policy(layout, task).kind)
        for _, tasks, _ in plans
        for task in tasks
        if task.held_in_trip
    }
    open_trips = await store.lock_open_trips(uow.conn, kinds) if kinds else []
    run = RunPlan(domain.TripBoard.of(open_trips, book.trip_members()), [], [])
    known = book.task_ids()
    for round_, tasks, cause in plans:
        for task in tasks:
            if task.held_in_trip:
                _hold_in_trip(run, known, task, round_.reservation_id, layout, now)
            elif task.task_id not in known:
                known.add(task.task_id)
                new = store.NewTask(task, round_.reservation_id, TaskStatus.RELEASED, None)
                run.tasks.append(new)
                run.releases.append(ReleasedAlone(new, cause))
    await _write(uow, run, now)


def _plan(round_: domain.Round, layout: Layout) -> list[PlannedTask]:
    plan = domain.plan_tasks(round_.order_id, round_.round_id, round_.allocations, layout)
    for warehouse_id, sku in plan.unslotted:
        log.warning(
            "picking.sku_unslotted",
            order_id=round_.order_id,
            warehouse_id=warehouse_id,
            sku=sku,
            location=layout.warehouse(warehouse_id).unslotted.location,
            hint="give the SKU a bin in the layout; until then it is picked from here",
        )
    return plan.tasks


def _policy(layout: Layout, task: PlannedTask) -> domain.TripPolicy:
    return domain.TripPolicy.of(layout.warehouse(task.warehouse_id))


def _hold_in_trip(
    run: RunPlan,
    known: set[str],
    task: PlannedTask,
    reservation_id: str,
    layout: Layout,
    now: datetime,
) -> None:
    policy = _policy(layout, task)
    trip = run.board.trip_for(policy, task.warehouse_id, task.task_id, now)
    if task.task_id in known:
        return  # planned before (a replayed round): it is in its trip already
    known.add(task.task_id)
    joined = run.board.join(trip, policy, task.order_id, now)
    run.tasks.append(store.NewTask(task, reservation_id, TaskStatus.HELD, trip.trip_id))
    if joined.release:
        # the trip holds many orders' tasks: no one event caused its release
        run.releases.append(TripLeft(joined.trip))


async def _write(uow: UnitOfWork, run: RunPlan, now: datetime) -> None:
    """Trips first (tasks refer to them), then the tasks; then the events, in order."""
    await _write_trips(uow, run.board, now)
    held_before = await store.release_held(
        uow.conn, sorted(run.board.released & run.board.stored), now
    )
    tasks = [_released_with_trip(t, run.board.released) for t in run.tasks]
    await store.insert_tasks(uow.conn, tasks, now)
    held_here: dict[str, list[store.NewTask]] = {}
    for task in tasks:
        if task.trip_id is not None:
            held_here.setdefault(task.trip_id, []).append(task)
    for release in run.releases:
        if isinstance(release, ReleasedAlone):
            await _emit(uow, _created(release.task, now), cause=release.cause)
            continue
        trip = release.trip
        events = [_created_from(stored, now) for stored in held_before.get(trip.trip_id, [])]
        events += [_created(task, now) for task in held_here.get(trip.trip_id, [])]
        _log_released(trip, len(events), now)
        for event in sorted(events, key=lambda e: e.task_id):
            await _emit(uow, event, cause=None)


async def _write_trips(uow: UnitOfWork, board: domain.TripBoard, now: datetime) -> None:
    released_at = dict.fromkeys(board.released, now)
    # stored trips first: one released here frees its (warehouse, kind) for a new one
    await store.update_trips(uow.conn, board.joined_stored(), released_at)
    opened = board.opened()
    wake = (wake_channel(uow.schema), TRIP_OPENED)
    inserted = await store.insert_trips(uow.conn, opened, released_at, wake)
    if lost := [t for t in opened if t.trip_id not in inserted]:
        # it was not there when the open trips were locked: what the run decided about
        # that warehouse's held tasks no longer holds (one by one, they join that trip)
        raise TripOpenedElsewhere(f"opened meanwhile: {[(t.warehouse_id, t.kind) for t in lost]}")


def _released_with_trip(task: store.NewTask, released: set[str]) -> store.NewTask:
    """A held task whose trip left in this run is inserted released."""
    if task.trip_id in released:
        return store.NewTask(task.planned, task.reservation_id, TaskStatus.RELEASED, task.trip_id)
    return task


async def _emit(uow: UnitOfWork, event: PickTaskCreated, cause: Envelope | None) -> None:
    await uow.emit(event, cause=cause)
    TASKS_RELEASED.labels(event.strategy).inc()


async def release_trip(
    uow: UnitOfWork, trip: domain.Trip, now: datetime, cause: Envelope | None
) -> None:
    """Release every held task of the trip together, and close the trip."""
    released = (await store.release_held(uow.conn, [trip.trip_id], now))[trip.trip_id]
    await store.mark_released(uow.conn, trip.trip_id, now)
    _log_released(trip, len(released), now)
    for stored in released:
        await _emit(uow, _created_from(stored, now), cause=cause)


def _log_released(trip: domain.Trip, tasks: int, now: datetime) -> None:
    log.info(
        "picking.trip_released",
        trip_id=trip.trip_id,
        kind=trip.kind,
        warehouse_id=trip.warehouse_id,
        tasks=tasks,
        orders=trip.order_count,
        late_s=round(max((now - trip.closes_at).total_seconds(), 0.0), 3),
    )


def _created(new: store.NewTask, now: datetime) -> PickTaskCreated:
    task = new.planned
    return PickTaskCreated(
        order_id=task.order_id,
        occurred_at=now,
        task_id=task.task_id,
        warehouse_id=task.warehouse_id,
        reservation_id=new.reservation_id,
        items=_items(task.lines),
        strategy=task.strategy,
        trip_id=new.trip_id,
        zone=task.zone,
        backorder_round=domain.backorder_round_of(task.round_id, new.reservation_id),
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
        backorder_round=domain.backorder_round_of(stored.round_id, stored.reservation_id),
    )


def _items(lines: Sequence[domain.PickLine] | Sequence[domain.TaskItem]) -> list[PickItem]:
    return [
        PickItem(line_id=i.line_id, sku=i.sku, quantity=i.quantity, location=i.location)
        for i in lines
    ]
