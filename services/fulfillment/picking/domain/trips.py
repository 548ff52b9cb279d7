"""Trips: tasks held back and released together. Pure.

A warehouse on the ``batch`` or ``wave`` strategy keeps one open trip per strategy;
each new task joins it and is *held*. The trip is released — every held task in it
emitted as ``picking.task_created`` with ``trip_id`` — when it is full or due:

- batch: full at ``max_orders`` orders (a picker's cart), due ``max_wait_s`` after it
  opened, so a quiet hour never strands an order;
- wave: due at the end of the clock-aligned window it opened in (every ``window_s``
  seconds), full at ``max_orders`` orders if that is set.

The trip is named after the task that opened it, so its id is reproducible.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from services.fulfillment.picking.domain.layout import BatchParams, WarehouseLayout, WaveParams
from services.fulfillment.picking.domain.planning import PICKING_NAMESPACE

TripKind = Literal["batch", "wave"]


@dataclass(frozen=True)
class TripPolicy:
    kind: TripKind
    max_orders: int  # 0: no limit (waves by time only)
    max_wait_s: float = 0.0  # batch
    window_s: float = 0.0  # wave

    @classmethod
    def batch(cls, params: BatchParams) -> TripPolicy:
        return cls("batch", params.max_orders, max_wait_s=params.max_wait_s)

    @classmethod
    def wave(cls, params: WaveParams) -> TripPolicy:
        return cls("wave", params.max_orders, window_s=params.window_s)

    @classmethod
    def of(cls, floor: WarehouseLayout) -> TripPolicy:
        if floor.strategy == "batch":
            return cls.batch(floor.batch)
        if floor.strategy == "wave":
            return cls.wave(floor.wave)
        raise ValueError(f"{floor.warehouse_id} picks {floor.strategy}: tasks join no trip")

    def closes_at(self, opened_at: datetime) -> datetime:
        if self.kind == "batch":
            return opened_at + timedelta(seconds=self.max_wait_s)
        window = self.window_s
        start = math.floor(opened_at.timestamp() / window) * window
        return datetime.fromtimestamp(start + window, UTC)

    def is_full(self, order_count: int) -> bool:
        return self.max_orders > 0 and order_count >= self.max_orders


@dataclass(frozen=True)
class Trip:
    trip_id: str
    warehouse_id: str
    kind: TripKind
    opened_at: datetime
    closes_at: datetime
    order_count: int = 0

    def is_due(self, now: datetime) -> bool:
        return now >= self.closes_at


def trip_id_for(warehouse_id: str, kind: TripKind, first_task_id: str) -> str:
    return str(uuid.uuid5(PICKING_NAMESPACE, f"trip:{warehouse_id}:{kind}:{first_task_id}"))


def open_trip(policy: TripPolicy, warehouse_id: str, first_task_id: str, now: datetime) -> Trip:
    return Trip(
        trip_id=trip_id_for(warehouse_id, policy.kind, first_task_id),
        warehouse_id=warehouse_id,
        kind=policy.kind,
        opened_at=now,
        closes_at=policy.closes_at(now),
    )


@dataclass(frozen=True)
class Joined:
    trip: Trip
    release: bool  # full or already due: release it now, with this task


def join(trip: Trip, policy: TripPolicy, *, new_order: bool, now: datetime) -> Joined:
    """A task joins the open trip; ``new_order`` if its order has no task in it yet (a
    backorder round of the same order does not take another place in the cart)."""
    joined = replace(trip, order_count=trip.order_count + (1 if new_order else 0))
    return Joined(joined, policy.is_full(joined.order_count) or joined.is_due(now))


def due(trips: list[Trip], now: datetime) -> list[Trip]:
    """The trips to release by time, oldest deadline first."""
    return sorted((t for t in trips if t.is_due(now)), key=lambda t: t.closes_at)


@dataclass
class TripBoard:
    """The open trips of the warehouses a run holds tasks in, as locked, and which orders
    are in which trip. The run's held tasks join in run order, in memory: a trip full or
    due leaves with the task that joined last, and the next task opens a new one.

    ``stored``: ids of the trips that were in the database before the run."""

    open: dict[tuple[str, TripKind], Trip]
    members: set[tuple[str, str]]  # (trip id, order id)
    stored: frozenset[str]
    trips: dict[str, Trip] = field(default_factory=dict)  # every trip opened or joined
    released: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, open_trips: list[Trip], members: set[tuple[str, str]]) -> TripBoard:
        return cls(
            open={(t.warehouse_id, t.kind): t for t in open_trips},
            members=set(members),
            stored=frozenset(t.trip_id for t in open_trips),
        )

    def trip_for(self, policy: TripPolicy, warehouse_id: str, task_id: str, now: datetime) -> Trip:
        """The warehouse's open trip of this kind; opened by this task if none."""
        trip = self.open.get((warehouse_id, policy.kind))
        if trip is None:
            trip = open_trip(policy, warehouse_id, task_id, now)
            self.open[(warehouse_id, policy.kind)] = self.trips[trip.trip_id] = trip
        return trip

    def join(self, trip: Trip, policy: TripPolicy, order_id: str, now: datetime) -> Joined:
        new_order = (trip.trip_id, order_id) not in self.members
        joined = join(trip, policy, new_order=new_order, now=now)
        self.members.add((trip.trip_id, order_id))
        self.trips[trip.trip_id] = joined.trip
        key = (trip.warehouse_id, trip.kind)
        if joined.release:
            self.released.add(trip.trip_id)
            del self.open[key]
        else:
            self.open[key] = joined.trip
        return joined

    def opened(self) -> list[Trip]:
        return [t for t in self.trips.values() if t.trip_id not in self.stored]

    def joined_stored(self) -> list[Trip]:
        return [t for t in self.trips.values() if t.trip_id in self.stored]
