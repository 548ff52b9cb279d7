"""Batches and waves (domain/trips.py): who joins, when a trip is full, when it is due.
No I/O, no clock: every test says what time it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.fulfillment.picking.domain import (
    BatchParams,
    Trip,
    TripPolicy,
    WaveParams,
    due,
    join,
    open_trip,
    trip_id_for,
)

T0 = datetime(2025, 3, 1, 12, 0, 7, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def collect(policy: TripPolicy, arrivals: list[tuple[str, float]]) -> list[tuple[Trip, list[str]]]:
    """Feed orders (id, arrival second) through one warehouse's open trip, as the handler
    does; a trip that becomes full or due leaves with the order that joined last."""
    released: list[tuple[Trip, list[str]]] = []
    trip: Trip | None = None
    members: list[str] = []
    for order_id, second in arrivals:
        now = at(second)
        if trip is None:
            trip, members = open_trip(policy, "WH", f"task-{order_id}", now), []
        joined = join(trip, policy, new_order=order_id not in members, now=now)
        trip, members = joined.trip, [*members, order_id]
        if joined.release:
            released.append((trip, members))
            trip = None
    return released


def test_a_batch_leaves_when_it_holds_max_orders() -> None:
    policy = TripPolicy.batch(BatchParams(max_orders=2, max_wait_s=30))
    released = collect(policy, [("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)])
    assert [orders for _, orders in released] == [["a", "b"], ["c", "d"]]
    assert released[0][0].trip_id == trip_id_for("WH", "batch", "task-a")
    assert released[0][0].trip_id != released[1][0].trip_id


def test_a_batch_leaves_after_max_wait_even_if_not_full() -> None:
    policy = TripPolicy.batch(BatchParams(max_orders=5, max_wait_s=30))
    trip = open_trip(policy, "WH", "task-a", at(0))
    assert trip.closes_at == at(30)
    trip = join(trip, policy, new_order=True, now=at(0)).trip
    assert due([trip], at(29.9)) == []
    assert due([trip], at(30)) == [trip]
    # an order arriving after the deadline joins and leaves with it at once
    assert join(trip, policy, new_order=True, now=at(31)).release


def test_another_round_of_the_same_order_takes_no_extra_place() -> None:
    policy = TripPolicy.batch(BatchParams(max_orders=2, max_wait_s=30))
    trip = open_trip(policy, "WH", "task-a", at(0))
    first = join(trip, policy, new_order=True, now=at(0))
    again = join(first.trip, policy, new_order=False, now=at(1))
    assert (again.trip.order_count, again.release) == (1, False)


def test_a_wave_closes_at_the_end_of_its_clock_aligned_window() -> None:
    policy = TripPolicy.wave(WaveParams(window_s=60, max_orders=0))
    trip = open_trip(policy, "WH", "task-a", at(0))  # 12:00:07
    assert trip.closes_at == datetime(2025, 3, 1, 12, 1, 0, tzinfo=UTC)
    released = collect(policy, [(f"o{n}", n) for n in range(40)] + [("late", 52.9)])
    assert released == []  # no count limit: everything waits for 12:01:00
    # opened at 12:00:59, closes a second later; y comes after that, before the release
    # job took the wave, so it joins and the wave leaves with it
    [(wave, orders)] = collect(policy, [("x", 52), ("y", 53.5), ("z", 60)])
    assert orders == ["x", "y"] and wave.closes_at == datetime(2025, 3, 1, 12, 1, tzinfo=UTC)


def test_a_wave_also_leaves_when_max_orders_joined() -> None:
    policy = TripPolicy.wave(WaveParams(window_s=60, max_orders=3))
    released = collect(policy, [(f"o{n}", n) for n in range(7)])
    assert [orders for _, orders in released] == [["o0", "o1", "o2"], ["o3", "o4", "o5"]]
    assert {t.closes_at for t, _ in released} == {datetime(2025, 3, 1, 12, 1, tzinfo=UTC)}


def test_due_trips_come_oldest_deadline_first() -> None:
    policy = TripPolicy.batch(BatchParams(max_orders=5, max_wait_s=10))
    early = open_trip(policy, "WH-1", "t1", at(0))
    later = open_trip(policy, "WH-2", "t2", at(5))
    not_yet = open_trip(policy, "WH-3", "t3", at(20))
    assert due([not_yet, later, early], at(15)) == [early, later]
