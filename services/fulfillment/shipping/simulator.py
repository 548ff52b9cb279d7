"""The simulated carrier's tracking: a background job that moves each dispatched parcel
along its scan plan (``domain/simulation.py``) and reports every scan as a
``shipping.carrier_update`` command — the same command the webhook queues for a real
carrier, so the rest of the service cannot tell them apart.

A parcel is enrolled in the dispatch's own transaction (the carrier collects at once).
The job takes due parcels in batches, ``FOR UPDATE SKIP LOCKED`` (several instances
share the work), one transaction per batch: the commands and the parcels' next steps
commit together, and a crash repeats a batch with the same carrier event ids, which the
consumer deduplicates. It wakes on ``NOTIFY`` from an enrollment, at the next due time,
or after ``poll_interval_s`` at the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.fulfillment.shipping.dispatch import Dispatched
from services.fulfillment.shipping.domain import simulation
from services.fulfillment.shipping.domain.calendar import add_business_days
from services.fulfillment.shipping.store import simulation as store
from shared.runtime.consumer import TRANSIENT
from shared.runtime.logging import get_logger
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.runtime.writes import Writes
from shared.schemas import Envelope
from shared.schemas.events.fulfillment import CarrierUpdate

log = get_logger(__name__)

IDLE_FLOOR_S = 0.01


@dataclass(frozen=True)
class SimulatorSettings:
    seed: int = 42
    step_seconds: float = 30.0
    delay_probability: float = 0.0
    exception_probability: float = 0.0
    batch_size: int = 500
    poll_interval_s: float = 1.0


def wake_channel(schema: str) -> str:
    """Notified by the trigger on simulated_tracking (migrations/0001_shipments.sql)."""
    return f"simulated_carrier_{schema}"


class TrackingSimulator:
    def __init__(self, settings: SimulatorSettings, *, schema: str) -> None:
        self.settings = settings
        self.channel = wake_channel(schema)
        self._wake = asyncio.Event()

    def enroll(self, writes: Writes, parcel: Dispatched, dispatched: Envelope) -> None:
        """The carrier has the parcel: plan its scans (in the dispatch's transaction)."""
        s = self.settings
        shipment = parcel.shipment
        plan = simulation.plan(
            s.seed,
            shipment.shipment_id,
            delay_probability=s.delay_probability,
            exception_probability=s.exception_probability,
        )
        on_the_road = store.OnTheRoad(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            carrier=parcel.label.carrier,
            tracking_number=parcel.label.tracking_number,
            origin=parcel.origin,
            destination=parcel.destination,
            estimated_delivery=parcel.label.estimated_delivery,
            plan=plan,
            dispatch_event_id=dispatched.id,
            correlation_id=dispatched.correlation_id,
            traceparent=dispatched.traceparent,
        )
        # the table's trigger notifies the simulator at commit
        store.enroll(writes, on_the_road, first_scan_after_s=s.step_seconds)

    async def run(self, ctx: ServiceContext, stopping: asyncio.Event) -> None:
        # LISTEN on a connection of its own: the pool's few connections stay for work
        listener = await asyncpg.connect(ctx.settings.database_url)
        await listener.add_listener(self.channel, self._on_notify)
        log.info("simulator.started", **self.settings.__dict__)
        failures = 0
        try:
            while not stopping.is_set():
                try:
                    scanned = await self.advance_due(ctx)
                    failures = 0
                    if scanned >= self.settings.batch_size:
                        continue  # more are due: no pause
                    pause = await self._until_next_due(ctx)
                    if scanned == 0:
                        # due rows held by another instance: let it commit, don't spin
                        pause = max(pause, IDLE_FLOOR_S)
                    await self._sleep(pause, stopping)
                except TRANSIENT as exc:  # the database is away: wait for it, don't die
                    failures += 1
                    log.warning("simulator.transient_error", error=repr(exc), failures=failures)
                    await self._sleep(min(0.1 * 2**failures, 5.0), stopping)
        finally:
            with contextlib.suppress(*TRANSIENT):
                await listener.close(timeout=5)
            log.info("simulator.stopped")

    async def advance_due(self, ctx: ServiceContext) -> int:
        """Report the next scan of every due parcel (up to a batch): one transaction."""
        s = self.settings
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema, buffered=True) as uow:
            due = await store.lock_due(uow.conn, s.batch_size)
            now = datetime.now(UTC)
            steps: list[tuple[str, int, bool]] = []
            for parcel in due:
                planned = parcel.scan
                update = CarrierUpdate(
                    order_id=parcel.order_id,
                    carrier=parcel.carrier,
                    tracking_number=parcel.tracking_number,
                    carrier_event_id=simulation.carrier_event_id(
                        parcel.tracking_number, parcel.step
                    ),
                    status=planned.status,
                    location=parcel.destination if planned.at_destination else parcel.origin,
                    description=planned.description,
                    estimated_delivery=add_business_days(
                        parcel.estimated_delivery, planned.eta_delay_days
                    ),
                    occurred_at=now,
                )
                await uow.emit(update, cause=_dispatch_of(parcel))
                steps.append((parcel.shipment_id, parcel.step + 1, parcel.last))
            await store.advance(uow.conn, steps, s.step_seconds)
        return len(due)

    async def _until_next_due(self, ctx: ServiceContext) -> float:
        wait = await store.seconds_until_next_due(ctx.pool)
        if wait is None:
            return self.settings.poll_interval_s
        return max(0.0, min(wait, self.settings.poll_interval_s))

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float, stopping: asyncio.Event) -> None:
        if seconds <= 0:
            return
        woken = asyncio.ensure_future(self._wake.wait())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({woken, stopped}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            woken.cancel()
            stopped.cancel()
            self._wake.clear()


def _dispatch_of(parcel: store.DueScan) -> Envelope:
    """The dispatch as a cause: scans carry its correlation id and trace onwards."""
    return Envelope(
        type="shipment.dispatched.v1",
        source="conveyor/shipping",
        data=b"",
        id=parcel.dispatch_event_id,
        correlation_id=parcel.correlation_id,
        traceparent=parcel.traceparent,
    )
