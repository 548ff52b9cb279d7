"""Reports merged into an (order, warehouse) group in memory, as a run applies them
(store.Group): the first report of a task wins, a completion may come first. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.fulfillment.packing.domain import PickedLine, Task, all_tasks_completed
from services.fulfillment.packing.store import Group
from shared.schemas.events.fulfillment import (
    ItemCount,
    Packed,
    PickingCompleted,
    PickItem,
    PickTaskCreated,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def created(task_id: str, at: datetime = T0) -> PickTaskCreated:
    return PickTaskCreated(
        order_id="o1",
        occurred_at=at,
        task_id=task_id,
        warehouse_id="WH",
        reservation_id="res-o1",
        items=[PickItem(line_id="1", sku="MUG", quantity=2, location="A-1")],
        strategy="single_order",
    )


def completed(task_id: str, quantity: int, at: datetime = T0) -> PickingCompleted:
    return PickingCompleted(
        order_id="o1",
        occurred_at=at,
        task_id=task_id,
        warehouse_id="WH",
        picked=[ItemCount(line_id="1", sku="MUG", quantity=quantity)],
        short_line_ids=[] if quantity == 2 else ["1"],
    )


EMPTY = Group("o1", "WH", {}, packed=False, packed_task_ids=())


def test_reports_merge_in_either_order_and_the_first_of_a_kind_wins() -> None:
    group = EMPTY.noted(completed("T-2", 2)).noted(created("T-1"))
    assert not all_tasks_completed(group.tasks)  # T-2's creation has not come
    group = group.noted(completed("T-1", 1)).noted(completed("T-1", 2, T0 + timedelta(1)))
    group = group.noted(created("T-2"))
    assert group.tasks == [
        Task("T-1", created=True, completed=True, picked=(PickedLine("1", "MUG", 1),)),
        Task("T-2", created=True, completed=True, picked=(PickedLine("1", "MUG", 2),)),
    ]
    assert group.reports["T-1"]["completed_at"] == T0.isoformat()
    assert EMPTY.reports == {}  # each step is a new group


def test_a_packed_group_keeps_what_it_packed() -> None:
    packed = Packed(
        order_id="o1",
        occurred_at=T0,
        packing_id="p-1",
        warehouse_id="WH",
        packages=[],
        packer_id="sim",
    )
    group = EMPTY.noted(created("T-1")).packed_as(packed, ["T-1"], T0)
    assert (group.packed, group.packed_task_ids, group.packing) == (True, ("T-1",), (packed, T0))
