"""Background jobs: release due trips, and the simulated picker.

Each job repeats a step that says how long to wait before the next one; it wakes earlier
on NOTIFY (a trip opened, events emitted) and stops at once when the service stops. A
database that is briefly unreachable is waited out, never a crash of the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from services.fulfillment.picking import domain, planner, scans, store
from services.fulfillment.picking.settings import PickingSettings
from shared.runtime.consumer import TRANSIENT
from shared.runtime.logging import get_logger
from shared.runtime.service import ServiceContext
from shared.runtime.uow import notify_channel, unit_of_work

log = get_logger(__name__)

Job = Callable[[ServiceContext, asyncio.Event], Coroutine[Any, Any, None]]
MIN_WAIT_S = 0.01  # another instance may hold the due rows: don't spin on them
RELEASE_BATCH = 100


async def _wait(woken: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting


async def repeat(
    name: str, step: Callable[[], Awaitable[float]], woken: asyncio.Event, stopping: asyncio.Event
) -> None:
    backoff = 0.05
    while not stopping.is_set():
        woken.clear()  # before the step: a NOTIFY during it makes the next wait return
        try:
            wait_s = await step()
            backoff = 0.05
        except TRANSIENT as exc:
            log.warning(f"{name}.transient_retry", error=repr(exc), retry_in_s=backoff)
            wait_s, backoff = backoff, min(backoff * 2, 5.0)
        if wait_s > 0:
            await _wait(woken, stopping, wait_s)


def _until(moment: datetime | None, now: datetime, cap_s: float) -> float:
    if moment is None:
        return cap_s
    return min(max((moment - now).total_seconds(), MIN_WAIT_S), cap_s)


class Wakeups:
    """One LISTEN connection for both jobs: ``trip_opened`` (a trip's deadline to watch)
    on picking's own channel, and ``emitted`` on the outbox channel, which every
    transaction that emits an event — releasing a task, say — notifies at commit."""

    def __init__(self) -> None:
        self.trip_opened = asyncio.Event()
        self.emitted = asyncio.Event()

    def job(self) -> Job:
        async def listen(ctx: ServiceContext, stopping: asyncio.Event) -> None:
            channels = {
                planner.wake_channel(ctx.schema): self.trip_opened,
                notify_channel(ctx.schema): self.emitted,
            }
            callbacks = {channel: _setter(event) for channel, event in channels.items()}
            async with ctx.pool.acquire() as conn:
                for channel, callback in callbacks.items():
                    await conn.add_listener(channel, callback)
                try:
                    await stopping.wait()
                finally:
                    for channel, callback in callbacks.items():
                        await conn.remove_listener(channel, callback)

        return listen


def _setter(event: asyncio.Event) -> Callable[..., None]:
    return lambda *_: event.set()


def release_due_trips(settings: PickingSettings, wakeups: Wakeups) -> Job:
    """Batches past their max wait and waves at the end of their window leave here."""

    async def job(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        async def step() -> float:
            now = datetime.now(UTC)
            async with unit_of_work(ctx.pool, ctx.name, ctx.schema, buffered=True) as uow:
                locked = await store.lock_due(uow.conn, now, RELEASE_BATCH)
                for trip in domain.due(locked, now):
                    await planner.release_trip(uow, trip, now, cause=None)
            if len(locked) == RELEASE_BATCH:
                return 0.0
            async with ctx.pool.acquire() as conn:
                deadline = await store.next_deadline(conn)
            return _until(deadline, datetime.now(UTC), settings.release_poll_s)

        await repeat("picking.release_job", step, wakeups.trip_opened, stopping)

    return job


def simulated_picker(settings: PickingSettings, wakeups: Wakeups) -> Job:
    """Picks released tasks through the same rules and path as a handheld, a batch of
    tasks per transaction; a task takes ``simulated_pick_s`` after its release."""
    pick_time = timedelta(seconds=settings.simulated_pick_s)

    async def job(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        async def step() -> float:
            now = datetime.now(UTC)
            async with unit_of_work(ctx.pool, ctx.name, ctx.schema, buffered=True) as uow:
                claimed = await store.claim_for_picker(
                    uow.conn, now - pick_time, settings.simulator_batch_size
                )
                tasks = await store.load_tasks(uow.conn, claimed) if claimed else {}
                requests = [
                    scans.ScanRequest(
                        confirmation_id=f"sim:{task_id}:{scan.line_id}",
                        task_id=task_id,
                        scan=scan,
                        source="simulator",
                    )
                    for task_id, stored in tasks.items()
                    for scan in domain.simulated_scans(
                        stored.task,
                        short_probability=settings.simulated_short_probability,
                        seed=settings.simulated_seed,
                        picker_id=settings.simulated_picker_id,
                    )
                ]
                if requests:
                    await scans.confirm_scans(uow, requests, now=now)
                    log.debug("picking.simulated_batch", tasks=len(claimed))
            if len(claimed) == settings.simulator_batch_size:
                return 0.0
            async with ctx.pool.acquire() as conn:
                oldest = await store.oldest_waiting(conn)
            due_at = oldest + pick_time if oldest else None
            return _until(due_at, datetime.now(UTC), settings.simulator_poll_s)

        await repeat("picking.simulator", step, wakeups.emitted, stopping)

    return job
