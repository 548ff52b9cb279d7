"""A run of events noted in memory (domain/rounds.py, domain/trips.py's TripBoard): each
event sees what the previous one changed, as if they were applied one by one. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.fulfillment.picking.domain import (
    Allocated,
    BatchParams,
    Confirmation,
    OrderBook,
    OrderState,
    Round,
    StoredRound,
    Trip,
    TripBoard,
    TripPolicy,
    trip_id_for,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONFIRMATION = Confirmation("res", ())


def round_(order_id: str, round_id: str) -> Round:
    return Round(order_id, round_id, f"res-{order_id}", [Allocated("1", "TEE", "WH", 1)])


def stored(
    order_id: str,
    round_id: str,
    minutes_ago: int,
    *,
    planned: bool,
    tasks: tuple[tuple[str, str | None], ...] = (),
) -> StoredRound:
    received = NOW - timedelta(minutes=minutes_ago)
    return StoredRound(round_(order_id, round_id), received, planned, tasks)


def book(*orders: OrderState, rounds: tuple[StoredRound, ...] = ()) -> OrderBook:
    by_order: dict[str, dict[str, StoredRound]] = {}
    for r in rounds:
        by_order.setdefault(r.round.order_id, {})[r.round.round_id] = r
    return OrderBook({o.order_id: o for o in orders}, by_order, now=NOW)


def test_a_round_waits_for_the_confirmation_of_its_order_in_the_same_run() -> None:
    orders = book(OrderState("a"))
    noted = orders.note_round(round_("a", "r1"))
    assert noted.new and not noted.order.may_pick
    confirmed = orders.confirm("a", CONFIRMATION)
    assert confirmed.rounds == [round_("a", "r1")]
    assert orders.confirm("a", Confirmation("res-2", ("MUG",))).rounds == []  # once
    assert orders.confirmations == {"a": Confirmation("res-2", ("MUG",))}  # the last wins
    assert orders.changed_rounds[("a", "r1")].planned


def test_a_confirmation_earlier_in_the_run_lets_the_round_be_planned_as_it_is_noted() -> None:
    orders = book(OrderState("a"))
    assert orders.confirm("a", CONFIRMATION).rounds == []
    assert orders.note_round(round_("a", "r1")).order.may_pick


def test_a_round_of_a_confirmed_order_is_planned_as_it_is_noted_and_only_once() -> None:
    orders = book(OrderState("a", confirmed=True))
    assert orders.note_round(round_("a", "r1")).order.may_pick
    assert not orders.note_round(round_("a", "r1")).new
    assert orders.changed_rounds[("a", "r1")] == StoredRound(round_("a", "r1"), NOW, True)


def test_a_confirmation_plans_waiting_rounds_in_the_order_they_were_received() -> None:
    orders = book(
        OrderState("a"),
        rounds=(
            stored("a", "z-first", 10, planned=False),
            stored("a", "a-second", 5, planned=False),
            stored("a", "done", 20, planned=True),
        ),
    )
    orders.note_round(round_("a", "m-here"))  # received now, after the stored ones
    orders.note_round(round_("a", "b-here"))  # same time: by round id
    planned = orders.confirm("a", CONFIRMATION).rounds
    assert [r.round_id for r in planned] == ["z-first", "a-second", "b-here", "m-here"]


def test_a_cancelled_order_is_noted_but_never_planned() -> None:
    orders = book(OrderState("a", cancelled=True), rounds=(stored("a", "r1", 1, planned=False),))
    confirmed = orders.confirm("a", CONFIRMATION)
    assert confirmed.order.confirmed and confirmed.rounds == []
    assert not orders.note_round(round_("a", "r2")).order.may_pick
    assert "a" in orders.confirmations  # the confirmation is still recorded


def test_the_book_knows_the_tasks_of_its_orders_and_their_trips() -> None:
    orders = book(
        OrderState("a"),
        rounds=(
            stored("a", "r1", 1, planned=True, tasks=(("t1", None), ("t2", "trip-1"))),
            stored("a", "r2", 1, planned=False),
        ),
    )
    assert orders.task_ids() == {"t1", "t2"}
    assert orders.trip_members() == {("trip-1", "a")}


BATCH = TripPolicy.batch(BatchParams(max_orders=2, max_wait_s=30))


def test_held_tasks_fill_a_trip_and_the_next_one_opens_a_new_one() -> None:
    stored_trip = Trip("trip-0", "WH", "batch", NOW, NOW + timedelta(seconds=30), 1)
    board = TripBoard.of([stored_trip], members={("trip-0", "a")})
    trip = board.trip_for(BATCH, "WH", "task-a2", NOW)
    assert trip == stored_trip
    # a's second round takes no other place in the cart
    assert not board.join(trip, BATCH, "a", NOW).release
    joined = board.join(board.trip_for(BATCH, "WH", "task-b", NOW), BATCH, "b", NOW)
    assert joined.release and joined.trip.order_count == 2
    fresh = board.trip_for(BATCH, "WH", "task-c", NOW)
    assert fresh.trip_id == trip_id_for("WH", "batch", "task-c") and fresh.order_count == 0
    assert not board.join(fresh, BATCH, "c", NOW).release
    assert board.released == {"trip-0"}
    assert [t.order_count for t in board.joined_stored()] == [2]
    assert [(t.trip_id, t.order_count) for t in board.opened()] == [(fresh.trip_id, 1)]


def test_a_trip_past_its_deadline_leaves_with_the_task_that_joins_it() -> None:
    board = TripBoard.of([], members=set())
    trip = board.trip_for(BATCH, "WH", "task-a", NOW)
    later = NOW + timedelta(seconds=31)
    assert board.join(trip, BATCH, "a", later).release
    assert board.trip_for(BATCH, "WH", "task-b", later).trip_id != trip.trip_id
