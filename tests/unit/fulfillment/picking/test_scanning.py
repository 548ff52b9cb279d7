"""Confirmation rules (domain/scanning.py): mis-picks change nothing, partial and full
picks, short picks, completion once. No I/O."""

from __future__ import annotations

import pytest

from services.fulfillment.picking.domain import (
    Accepted,
    Rejected,
    Scan,
    Task,
    TaskItem,
    TaskStatus,
    completion,
    confirm,
)

TASK = Task(
    "t1",
    "o1",
    "WH",
    TaskStatus.RELEASED,
    (TaskItem("1", "MUG", "H-01-01", 2), TaskItem("2", "TEE", "A-01-01", 3)),
)


def scan(
    sku: str = "MUG",
    location: str | None = "H-01-01",
    quantity: int = 2,
    line_id: str | None = None,
    closes_item: bool = False,
) -> Scan:
    return Scan(sku, location, quantity, "ada", line_id=line_id, closes_item=closes_item)


def accepted(result: Accepted | Rejected) -> Accepted:
    assert isinstance(result, Accepted), result
    return result


@pytest.mark.parametrize(
    ("bad", "code", "kind"),
    [
        (scan(sku="CAP"), "sku_not_on_task", "mispick"),
        (scan(line_id="2"), "sku_not_on_task", "mispick"),  # line 2 is the TEE
        (scan(line_id="9"), "line_not_on_task", "mispick"),
        (scan(location="A-01-01"), "wrong_location", "mispick"),
        (scan(quantity=3), "too_many_units", "mispick"),
        (scan(quantity=-1), "too_many_units", "mispick"),
        (scan(quantity=0), "nothing_scanned", "mispick"),
    ],
)
def test_a_mispick_is_rejected_with_its_reason(bad: Scan, code: str, kind: str) -> None:
    result = confirm(TASK, bad)
    assert isinstance(result, Rejected)
    assert (result.code, result.kind) == (code, kind)
    assert result.reason.message and result.reason.code == code


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (TaskStatus.HELD, "task_not_released"),
        (TaskStatus.CANCELLED, "task_cancelled"),
        (TaskStatus.COMPLETED, "task_completed"),
    ],
)
def test_a_closed_task_takes_no_confirmation(status: TaskStatus, code: str) -> None:
    result = confirm(Task("t1", "o1", "WH", status, TASK.items), scan())
    assert isinstance(result, Rejected) and (result.code, result.kind) == (code, "conflict")


def test_units_add_up_until_the_line_is_picked() -> None:
    first = accepted(confirm(TASK, scan(quantity=1)))
    assert (first.item.picked, first.item.remaining, first.line_ended) == (1, 1, False)
    assert first.task.status == TaskStatus.PICKING
    assert TASK.items[0].picked == 0  # the task given in is not changed
    second = accepted(confirm(first.task, scan(quantity=1)))
    assert (second.item.status, second.line_ended, second.completed) == ("picked", True, False)
    again = confirm(second.task, scan(quantity=1))
    assert isinstance(again, Rejected) and again.code == "item_already_done"


def test_a_short_pick_closes_the_line_with_what_was_found() -> None:
    picked = accepted(confirm(TASK, scan()))
    short = accepted(confirm(picked.task, scan("TEE", "A-01-01", quantity=1, closes_item=True)))
    assert (short.item.status, short.item.picked, short.item.remaining) == ("short", 1, 0)
    assert short.completed and short.task.status == TaskStatus.COMPLETED
    done = completion(short.task)
    assert [(i.line_id, i.picked) for i in done.picked] == [("1", 2), ("2", 1)]
    assert done.short_line_ids == ["2"]


def test_nothing_found_at_the_bin_leaves_the_line_out_of_what_was_picked() -> None:
    picked = accepted(confirm(TASK, scan()))
    short = accepted(confirm(picked.task, scan("TEE", None, quantity=0, closes_item=True)))
    assert short.completed
    done = completion(short.task)
    assert [i.line_id for i in done.picked] == ["1"] and done.short_line_ids == ["2"]


def test_closing_a_line_with_every_unit_is_a_full_pick_not_a_short() -> None:
    result = accepted(confirm(TASK, scan(closes_item=True)))
    assert (result.item.status, result.item.short) == ("picked", False)


def test_the_task_completes_once() -> None:
    task = accepted(confirm(TASK, scan())).task
    done = accepted(confirm(task, scan("TEE", "A-01-01", quantity=3)))
    assert done.completed
    late = confirm(done.task, scan("TEE", "A-01-01", quantity=1))
    assert isinstance(late, Rejected) and late.code == "task_completed"


def test_a_sku_on_two_lines_fills_the_first_open_line_first() -> None:
    task = Task(
        "t1",
        "o1",
        "WH",
        TaskStatus.RELEASED,
        (TaskItem("1", "MUG", "H-01-01", 1), TaskItem("2", "MUG", "H-01-01", 1)),
    )
    first = accepted(confirm(task, scan(quantity=1)))
    second = accepted(confirm(first.task, scan(quantity=1)))
    assert (first.item.line_id, second.item.line_id) == ("1", "2")
    assert second.completed
    by_line = accepted(confirm(task, scan(quantity=1, line_id="2")))
    assert by_line.item.line_id == "2"
