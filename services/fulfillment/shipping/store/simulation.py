"""The simulated carrier's parcels on the road (``simulated_tracking``): enrolled in the
dispatch's transaction (with the run's other writes), advanced in batches by the
simulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import asyncpg

from services.fulfillment.shipping.domain.simulation import PlannedScan
from shared.runtime.writes import Writes


@dataclass(frozen=True)
class OnTheRoad:
    """A parcel to enroll: its whole plan."""

    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    origin: str
    destination: str
    estimated_delivery: date
    plan: list[PlannedScan]
    dispatch_event_id: str
    correlation_id: str | None
    traceparent: str | None


@dataclass(frozen=True)
class DueScan:
    """A parcel whose next scan is due: only that scan of its plan is read."""

    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    origin: str
    destination: str
    estimated_delivery: date
    step: int
    scan: PlannedScan
    last: bool  # the plan's final scan
    dispatch_event_id: str
    correlation_id: str | None
    traceparent: str | None


ENROLL = """INSERT INTO simulated_tracking
                  (shipment_id, order_id, carrier, tracking_number, origin, destination,
                   estimated_delivery, plan, next_step, due_at, dispatch_event_id,
                   correlation_id, traceparent)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, 0,
                      now() + make_interval(secs => $9), $10, $11, $12)
              ON CONFLICT (shipment_id) DO NOTHING"""


def enroll(writes: Writes, parcel: OnTheRoad, *, first_scan_after_s: float) -> None:
    writes.add(
        ENROLL,
        parcel.shipment_id,
        parcel.order_id,
        parcel.carrier,
        parcel.tracking_number,
        parcel.origin,
        parcel.destination,
        parcel.estimated_delivery,
        json.dumps([scan.to_json() for scan in parcel.plan]),
        first_scan_after_s,
        parcel.dispatch_event_id,
        parcel.correlation_id,
        parcel.traceparent,
    )


async def lock_due(conn: asyncpg.Connection, limit: int) -> list[DueScan]:
    """Up to ``limit`` parcels whose next scan is due, oldest first; rows another
    simulator (another instance) holds are skipped, not waited for."""
    rows = await conn.fetch(
        """SELECT shipment_id, order_id, carrier, tracking_number, origin, destination,
                  estimated_delivery, next_step, plan -> next_step AS scan,
                  next_step + 1 >= jsonb_array_length(plan) AS last,
                  dispatch_event_id, correlation_id, traceparent
             FROM simulated_tracking
            WHERE due_at <= now()
            ORDER BY due_at
            LIMIT $1
              FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [
        DueScan(
            shipment_id=r["shipment_id"],
            order_id=r["order_id"],
            carrier=r["carrier"],
            tracking_number=r["tracking_number"],
            origin=r["origin"],
            destination=r["destination"],
            estimated_delivery=r["estimated_delivery"],
            step=r["next_step"],
            scan=PlannedScan.from_json(json.loads(r["scan"])),
            last=r["last"],
            dispatch_event_id=r["dispatch_event_id"],
            correlation_id=r["correlation_id"],
            traceparent=r["traceparent"],
        )
        for r in rows
    ]


async def advance(
    conn: asyncpg.Connection, steps: list[tuple[str, int, bool]], next_scan_after_s: float
) -> None:
    """(shipment id, next step, finished) for each parcel just scanned, in one statement."""
    if not steps:
        return
    ids, next_steps, finished = zip(*steps, strict=True)
    await conn.execute(
        """UPDATE simulated_tracking t
              SET next_step = u.next_step,
                  due_at = CASE WHEN u.finished THEN NULL
                                ELSE now() + make_interval(secs => $4) END
             FROM unnest($1::text[], $2::int[], $3::bool[]) AS u(shipment_id, next_step, finished)
            WHERE t.shipment_id = u.shipment_id""",
        list(ids),
        list(next_steps),
        list(finished),
        next_scan_after_s,
    )


async def seconds_until_next_due(pool: asyncpg.Pool) -> float | None:
    """None when no parcel is on the road; 0 or less when one is due now."""
    value = await pool.fetchval(
        """SELECT EXTRACT(EPOCH FROM min(due_at) - clock_timestamp())
             FROM simulated_tracking WHERE due_at IS NOT NULL"""
    )
    return float(value) if value is not None else None
