"""Concurrent steps of a run (shared/runtime/keyed.py): one key's items in turn, keys at
once up to a bound, results and held events in the run's order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.runtime.keyed import HeldEvents, KeyedLocks, each_key_in_turn

TIMEOUT_S = 5.0


async def test_one_keys_items_go_in_turn_and_results_keep_the_items_order() -> None:
    items = [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3)]
    seen: list[tuple[str, int]] = []

    async def step(item: tuple[str, int]) -> str:
        await asyncio.sleep(0)  # let the other key's task interleave
        seen.append(item)
        return f"{item[0]}{item[1]}"

    results = await each_key_in_turn(items, lambda item: item[0], step, at_once=4)

    assert results == ["a1", "b1", "a2", "b2", "a3"]
    assert [n for key, n in seen if key == "a"] == [1, 2, 3]
    assert [n for key, n in seen if key == "b"] == [1, 2]


async def test_different_keys_are_in_flight_at_once() -> None:
    """a's step waits for b's to start: done one after another, this would never end."""
    b_started = asyncio.Event()

    async def step(key: str) -> str:
        if key == "a":
            await b_started.wait()
        else:
            b_started.set()
        return key

    run = each_key_in_turn(["a", "b"], lambda key: key, step, at_once=2)
    assert await asyncio.wait_for(run, TIMEOUT_S) == ["a", "b"]


async def test_no_more_keys_than_allowed_are_in_flight() -> None:
    in_flight, most = 0, 0

    async def step(key: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return key

    assert await each_key_in_turn(list(range(10)), lambda k: k, step, at_once=3) == list(range(10))
    assert most == 3


async def test_a_failing_step_cancels_the_others_and_is_raised_as_it_is() -> None:
    cancelled = asyncio.Event()

    async def step(key: str) -> str:
        if key == "fails":
            await asyncio.sleep(0)
            raise ValueError("no answer")
        try:
            await asyncio.Event().wait()  # never answered
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return key

    with pytest.raises(ValueError, match="no answer"):
        await asyncio.wait_for(
            each_key_in_turn(["waits", "fails"], lambda k: k, step, at_once=2), TIMEOUT_S
        )
    assert cancelled.is_set()


async def test_held_events_reach_the_unit_of_work_in_the_order_emitted() -> None:
    class Outbox:
        def __init__(self) -> None:
            self.emitted: list[tuple[Any, Any]] = []

        async def emit(self, message: Any, *, cause: Any = None) -> None:
            self.emitted.append((message, cause))

    first, second, outbox = HeldEvents(), HeldEvents(), Outbox()
    await second.emit("b1", cause="e2")  # type: ignore[arg-type]
    await first.emit("a1", cause="e1")  # type: ignore[arg-type]
    await first.emit("a2", cause="e1")  # type: ignore[arg-type]
    for held in (first, second):
        await held.emit_into(outbox)  # type: ignore[arg-type]
    assert outbox.emitted == [("a1", "e1"), ("a2", "e1"), ("b1", "e2")]


async def test_keyed_locks_serialize_one_key_and_forget_it_when_free() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    other_key_ran = asyncio.Event()

    async def holder(name: str, key: str, wait_for: asyncio.Event | None = None) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait_for is not None:
                await wait_for.wait()  # held while another key's holder runs
            await asyncio.sleep(0)
            order.append(f"{name} out")

    async def other() -> None:
        async with locks.hold("y"):
            other_key_ran.set()

    await asyncio.wait_for(
        asyncio.gather(holder("first", "x", other_key_ran), holder("second", "x"), other()),
        TIMEOUT_S,
    )
    assert order == ["first in", "first out", "second in", "second out"]
    assert len(locks) == 0
