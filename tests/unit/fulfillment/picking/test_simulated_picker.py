"""The simulated picker's choices (domain/simulation.py): full picks by default, seeded
short picks, and scans that pass the same rules as a handheld's. No I/O."""

from __future__ import annotations

from services.fulfillment.picking.domain import (
    Accepted,
    Task,
    TaskItem,
    TaskStatus,
    confirm,
    simulated_scans,
)


def task(task_id: str, lines: int = 3) -> Task:
    items = tuple(TaskItem(str(n), f"SKU-{n}", f"A-0{n}-01", 4) for n in range(1, lines + 1))
    return Task(task_id, "o1", "WH", TaskStatus.RELEASED, items)


def run(t: Task, probability: float, seed: int = 0) -> Task:
    for s in simulated_scans(t, short_probability=probability, seed=seed, picker_id="sim"):
        result = confirm(t, s)
        assert isinstance(result, Accepted), result  # the simulator never mis-picks
        t = result.task
    return t


def test_without_shortages_every_line_is_picked_in_full() -> None:
    done = run(task("t1"), probability=0)
    assert done.status == TaskStatus.COMPLETED
    assert [(i.picked, i.short) for i in done.items] == [(4, False)] * 3


def test_with_certain_shortage_every_line_ends_short() -> None:
    done = run(task("t1"), probability=1)
    assert done.status == TaskStatus.COMPLETED
    assert all(i.short and i.picked < i.quantity for i in done.items)


def test_shortages_are_reproducible_from_the_seed() -> None:
    tasks = [task(f"t{n}") for n in range(50)]

    def shorts(seed: int) -> list[tuple[str, str, int]]:
        return [
            (t.task_id, i.line_id, i.picked)
            for t in tasks
            for i in run(t, probability=0.2, seed=seed).items
            if i.short
        ]

    assert shorts(7) == shorts(7)
    assert shorts(7) != shorts(8)
    assert 10 <= len(shorts(7)) <= 50  # about a fifth of 150 lines


def test_lines_already_ended_are_left_alone() -> None:
    t = task("t1", lines=2)
    partly = Task(
        t.task_id,
        "o1",
        "WH",
        TaskStatus.PICKING,
        (t.items[0], TaskItem("2", "SKU-2", "A-02-01", 4, picked=4)),
    )
    scans = simulated_scans(partly, short_probability=0, seed=0, picker_id="sim")
    assert [(s.line_id, s.quantity) for s in scans] == [("1", 4)]
