"""Reports noted into an order's groups at a warehouse in memory, as a run notes them
(domain/groups.py): one group per allocation round, the first report of a task wins, a
completion may come before its task's creation and then holds back every group not
packed yet, a task after its group was packed is not boxed. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.fulfillment.packing.domain import Group, OrderAtWarehouse, PickedLine, Task
from shared.schemas.events.fulfillment import (
    ItemCount,
    Packed,
    PickingCompleted,
    PickItem,
    PickTaskCreated,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ROUND = "backorder:acc8fed87c102bac50bc"


def created(task_id: str, at: datetime = T0, round_: str | None = None) -> PickTaskCreated:
    return PickTaskCreated(
        order_id="o1",
        occurred_at=at,
        task_id=task_id,
        warehouse_id="WH",
        reservation_id="res-o1",
        items=[PickItem(line_id="1", sku="MUG", quantity=2, location="A-1")],
        strategy="single_order",
        backorder_round=round_,
    )


def completed(task_id: str, quantity: int = 2, at: datetime = T0) -> PickingCompleted:
    return PickingCompleted(
        order_id="o1",
        occurred_at=at,
        task_id=task_id,
        warehouse_id="WH",
        picked=[ItemCount(line_id="1", sku="MUG", quantity=quantity)],
        short_line_ids=[] if quantity == 2 else ["1"],
    )


def packed_event(round_: str | None = None) -> Packed:
    return Packed(
        order_id="o1",
        occurred_at=T0,
        packing_id=f"p-{round_}",
        warehouse_id="WH",
        packages=[],
        packer_id="sim",
        backorder_round=round_,
    )


def ready_rounds(at: OrderAtWarehouse, *messages: PickTaskCreated | PickingCompleted) -> list:
    """Note the messages; the rounds each made ready (packing them as the handler does)."""
    made_ready = []
    for message in messages:
        noted = at.note(message)
        made_ready.append([g.backorder_round for g in noted.ready])
        for group in noted.ready:
            at.packed(group.backorder_round, packed_event(group.backorder_round), T0)
    return made_ready


def test_reports_merge_in_either_order_and_the_first_of_a_kind_wins() -> None:
    at = OrderAtWarehouse("o1", "WH")
    assert at.note(completed("T-2")).group is None  # early: its round is not known
    at.note(created("T-1"))
    assert at.note(completed("T-1", 1)).ready == []  # T-2's completion holds it back
    at.note(completed("T-1", 2, T0 + timedelta(1)))
    noted = at.note(created("T-2"))
    assert noted.ready == [at.groups[None]] and at.early == {}
    group = at.groups[None]
    assert group.tasks == [
        Task("T-1", created=True, completed=True, picked=(PickedLine("1", "MUG", 1),)),
        Task("T-2", created=True, completed=True, picked=(PickedLine("1", "MUG", 2),)),
    ]
    assert group.reports["T-1"]["completed_at"] == T0.isoformat()
    assert at.early_changed and at.changed == {None}


def test_each_round_is_a_group_of_its_own_packed_when_its_own_tasks_completed() -> None:
    at = OrderAtWarehouse("o1", "WH")
    steps = ready_rounds(
        at,
        created("T-1"),
        created("B-1", round_=ROUND),
        completed("B-1"),  # the backorder round is ready alone
        completed("T-1"),
    )
    assert steps == [[], [], [ROUND], [None]]
    assert {r: g.packed_task_ids for r, g in at.groups.items()} == {None: ("T-1",), ROUND: ("B-1",)}


def test_a_new_round_at_a_packed_warehouse_is_boxed_a_late_task_of_a_packed_round_is_not() -> None:
    at = OrderAtWarehouse("o1", "WH")
    assert ready_rounds(at, created("T-1"), completed("T-1")) == [[], [None]]
    late = at.note(created("T-2"))  # the reservation round again, after its packing
    assert late.after_packing and late.ready == []
    assert at.note(completed("T-2")).after_packing
    new_round = at.note(created("B-1", round_=ROUND))
    assert not new_round.after_packing and new_round.group is at.groups[ROUND]
    assert [g.backorder_round for g in at.note(completed("B-1")).ready] == [ROUND]


def test_an_early_completion_holds_back_every_round_until_its_creation_places_it() -> None:
    at = OrderAtWarehouse("o1", "WH")
    steps = ready_rounds(
        at,
        completed("B-1"),  # a backorder round's task, its creation not come yet
        created("T-1"),
        completed("T-1"),  # the reservation round would be ready: held back
        created("B-1", round_=ROUND),  # places it: both rounds ready, reservation first
    )
    assert steps == [[], [], [], [None, ROUND]]
    assert at.groups[ROUND].packed_task_ids == ("B-1",)


def test_a_task_stays_in_the_group_of_its_first_creation() -> None:
    at = OrderAtWarehouse("o1", "WH")
    at.note(created("T-1"))
    assert at.note(created("T-1", round_=ROUND)).group is at.groups[None]
    assert set(at.groups) == {None}


def test_a_packed_group_keeps_what_it_packed() -> None:
    event = packed_event()
    group = Group("o1", "WH", None, {}).noted("T-1", {"created_at": T0.isoformat()})
    group = group.packed_as(event, T0)
    assert (group.packed, group.packed_task_ids, group.packing) == (True, ("T-1",), (event, T0))
    assert group.came_after_packing("T-2") and not group.came_after_packing("T-1")
