"""Planning tasks by strategy (domain/planning.py): per warehouse, per zone, unslotted
SKUs, pick-path order, reproducible ids, the round a task names. No I/O. (A backorder
round's id is the contract's: tests/unit/schemas/test_backorder_round.py.)"""

from __future__ import annotations

import pytest

from services.fulfillment.picking.domain import (
    Allocated,
    OrderState,
    PickLine,
    backorder_round_of,
    plan_tasks,
    task_id_for,
)
from tests.unit.fulfillment.picking.layouts import LAYOUT


def alloc(line: str, sku: str, warehouse: str, quantity: int = 1) -> Allocated:
    return Allocated(line, sku, warehouse, quantity)


def test_single_order_makes_one_task_per_warehouse_in_pick_path_order() -> None:
    plan = plan_tasks(
        "o1",
        "res-1",
        [alloc("1", "MUG", "SINGLE", 2), alloc("2", "TEE", "SINGLE"), alloc("3", "TEE", "BATCH")],
        LAYOUT,
    )
    by_warehouse = {t.warehouse_id: t for t in plan.tasks}
    assert set(by_warehouse) == {"SINGLE", "BATCH"}
    single = by_warehouse["SINGLE"]
    assert (single.strategy, single.zone, single.held_in_trip) == ("single_order", None, False)
    assert single.lines == (
        PickLine("2", "TEE", 1, "A-01-01"),  # aisle A comes before H on the walk
        PickLine("1", "MUG", 2, "H-01-01"),
    )
    assert by_warehouse["BATCH"].held_in_trip and by_warehouse["BATCH"].strategy == "batch"
    assert plan.unslotted == []


def test_zone_routes_each_item_to_the_zone_of_its_bin() -> None:
    plan = plan_tasks(
        "o1",
        "res-1",
        [alloc("1", "MUG", "ZONED"), alloc("2", "TEE", "ZONED"), alloc("3", "HOODIE", "ZONED")],
        LAYOUT,
    )
    zones = {t.zone: [line.line_id for line in t.lines] for t in plan.tasks}
    assert zones == {"A": ["2", "3"], "H": ["1"]}
    assert {t.strategy for t in plan.tasks} == {"zone"}
    assert len({t.task_id for t in plan.tasks}) == 2


def test_a_sku_without_a_bin_goes_to_the_unslotted_location_and_is_reported() -> None:
    plan = plan_tasks("o1", "r", [alloc("1", "GIFT", "ZONED"), alloc("2", "MUG", "ZONED")], LAYOUT)
    unslotted = next(t for t in plan.tasks if t.zone == "UNSLOTTED")
    assert unslotted.lines == (PickLine("1", "GIFT", 1, "ZONED-UNSLOTTED"),)
    assert plan.unslotted == [("ZONED", "GIFT")]


def test_a_warehouse_missing_from_the_layout_is_picked_single_order_from_unslotted() -> None:
    [task] = plan_tasks("o1", "r", [alloc("1", "MUG", "ELSEWHERE")], LAYOUT).tasks
    assert (task.strategy, task.lines[0].location) == ("single_order", "UNSLOTTED")


def test_task_ids_are_reproducible_and_differ_per_warehouse_zone_and_round() -> None:
    allocations = [alloc("1", "MUG", "ZONED"), alloc("2", "TEE", "ZONED")]
    first = plan_tasks("o1", "res-1", allocations, LAYOUT).tasks
    again = plan_tasks("o1", "res-1", list(reversed(allocations)), LAYOUT).tasks
    assert [t.task_id for t in first] == [t.task_id for t in again]
    ids = {
        task_id_for("o1", "ZONED", "A", "res-1"),
        task_id_for("o1", "ZONED", "H", "res-1"),
        task_id_for("o1", "SINGLE", None, "res-1"),
        task_id_for("o1", "ZONED", "A", "backorder:x"),
        task_id_for("o2", "ZONED", "A", "res-1"),
    }
    assert len(ids) == 5


def test_a_task_names_its_backorder_round_and_none_for_the_reservation_round() -> None:
    # the reservation round is named after its reservation: no backorder round
    assert backorder_round_of("res-1", "res-1") is None
    assert backorder_round_of("backorder:acc8fed87c102bac50bc", "res-1") == (
        "backorder:acc8fed87c102bac50bc"
    )


@pytest.mark.parametrize(
    ("confirmed", "cancelled", "may_pick"),
    [(False, False, False), (True, False, True), (True, True, False), (False, True, False)],
)
def test_only_a_confirmed_uncancelled_order_is_picked(
    confirmed: bool, cancelled: bool, may_pick: bool
) -> None:
    assert OrderState("o1", confirmed=confirmed, cancelled=cancelled).may_pick is may_pick
