"""When a group is ready to pack, what its tasks picked, and the packed event:
deterministic ids (per order, warehouse and round), the box's outer size, the weight with
the box."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.fulfillment.packing.domain import (
    PACKING_NAMESPACE,
    PickedLine,
    Size,
    Task,
    all_tasks_completed,
    cartonize,
    package_id_for,
    packed,
    packing_id_for,
    picked_lines,
)
from tests.unit.fulfillment.packing.catalogs import catalog, lines

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROUND = "backorder:acc8fed87c102bac50bc"


def task(task_id: str, *, created: bool = True, completed: bool = True, **picked: int) -> Task:
    return Task(
        task_id,
        created,
        completed,
        tuple(PickedLine(f"line-{sku}", sku, n) for sku, n in picked.items()),
    )


def test_ready_once_every_created_task_completed() -> None:
    assert not all_tasks_completed([])
    assert all_tasks_completed([task("T1")])
    assert not all_tasks_completed([task("T1"), task("T2", completed=False)])
    assert all_tasks_completed([task("T1"), task("T2")])


def test_a_completion_before_its_creation_keeps_the_group_waiting() -> None:
    # T2's creation has not arrived: there is a task we cannot count yet
    assert not all_tasks_completed([task("T1"), task("T2", created=False)])


def test_picked_lines_add_up_over_tasks_and_skip_empty_lines() -> None:
    tasks = [
        task("T1", MUG=2, TEE=1),
        task("T2", MUG=1, CAP=0),  # a zone picked more of a line; a short line picked 0
        task("T3"),  # picked nothing at all
    ]
    assert picked_lines(tasks) == [
        PickedLine("line-MUG", "MUG", 3),
        PickedLine("line-TEE", "TEE", 1),
    ]
    assert picked_lines([task("T3")]) == []


def test_ids_derive_from_order_and_warehouse_only() -> None:
    assert packing_id_for("o-1", "WH-A") == packing_id_for("o-1", "WH-A")
    assert packing_id_for("o-1", "WH-A") != packing_id_for("o-1", "WH-B")
    assert package_id_for("o-1", "WH-A", 1) != package_id_for("o-1", "WH-A", 2)
    assert package_id_for("o-1", "WH-A", 1) != packing_id_for("o-1", "WH-A")


def test_the_reservation_round_keeps_the_ids_packing_always_gave() -> None:
    # uuid5 of "order/warehouse" and "order/warehouse/n": replays find them again
    assert packing_id_for("o-1", "WH-A", None) == str(uuid.uuid5(PACKING_NAMESPACE, "o-1/WH-A"))
    assert package_id_for("o-1", "WH-A", 2) == str(uuid.uuid5(PACKING_NAMESPACE, "o-1/WH-A/2"))
    # as the code before rounds computed them
    assert packing_id_for("o-1", "WH-A") == "fba91a43-446c-579a-8c17-be1db38f21c7"
    assert package_id_for("o-1", "WH-A", 2) == "4f98cc87-addb-598b-84b1-22f5a8cd6d01"


def test_a_backorder_round_gets_ids_of_its_own() -> None:
    reservation = {
        packing_id_for("o-1", "WH-A"),
        *(package_id_for("o-1", "WH-A", n) for n in (1, 2)),
    }
    round_ids = {
        packing_id_for("o-1", "WH-A", ROUND),
        package_id_for("o-1", "WH-A", 1, ROUND),
        package_id_for("o-1", "WH-A", 2, ROUND),
    }
    other_round = packing_id_for("o-1", "WH-A", "backorder:6f93739f8f096e166c6a")
    assert len(round_ids) == 3 and not round_ids & reservation
    assert other_round not in round_ids | reservation
    assert packing_id_for("o-1", "WH-A", ROUND) == packing_id_for("o-1", "WH-A", ROUND)


def test_a_backorder_rounds_packed_event_names_it_and_its_ids() -> None:
    result = cartonize(lines(("CUBE", 1)), catalog(), 0.8)
    event = packed("o-1", "WH-A", result, backorder_round=ROUND, packer_id="sim", now=NOW)
    assert event.backorder_round == ROUND
    assert event.packing_id == packing_id_for("o-1", "WH-A", ROUND)
    assert [p.package_id for p in event.packages] == [package_id_for("o-1", "WH-A", 1, ROUND)]
    assert packed("o-1", "WH-A", result, packer_id="sim", now=NOW).backorder_round is None


def test_the_packed_event_has_outer_sizes_weights_and_stable_ids() -> None:
    result = cartonize(lines(("BRICK", 3), ("CUBE", 1)), catalog(), 0.8)
    event = packed("o-1", "WH-A", result, packer_id="sim-packer", now=NOW)
    again = packed("o-1", "WH-A", result, packer_id="sim-packer", now=NOW)
    assert event == again
    assert event.packing_id == packing_id_for("o-1", "WH-A")
    assert [p.package_id for p in event.packages] == [
        package_id_for("o-1", "WH-A", 1),
        package_id_for("o-1", "WH-A", 2),
    ]
    large, medium = event.packages
    assert (large.box_code, large.length_mm, large.width_mm, large.height_mm) == (
        "L",
        310,
        310,
        310,
    )  # 300 mm inside + 5 mm walls on both sides
    assert large.weight_grams == 2 * 4_000 + 100 + 500
    assert [(i.line_id, i.sku, i.quantity) for i in large.items] == [
        ("1", "BRICK", 2),
        ("2", "CUBE", 1),
    ]
    assert (medium.box_code, medium.length_mm, medium.weight_grams) == ("M", 206, 4_000 + 200)
    assert event.packer_id == "sim-packer" and event.warehouse_id == "WH-A"


def test_a_size_fits_turned_and_refuses_nonsense() -> None:
    assert Size(10, 300, 20).fits_in(Size(310, 25, 15).sides)
    assert not Size(10, 300, 20).fits_in(Size(290, 25, 15).sides)
    assert Size(280, 210, 40).grown(1).sides == (282, 212, 42)
    with pytest.raises(ValueError):
        Size(0, 10, 10)
