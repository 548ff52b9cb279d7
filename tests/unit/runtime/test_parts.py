"""A service's parts are started again when they fail, with back-off, until it stops."""

from __future__ import annotations

import asyncio

from shared.runtime.parts import Parts


async def test_a_failing_part_is_started_again_and_reported_down_meanwhile() -> None:
    stopping = asyncio.Event()
    parts = Parts(stopping, initial_s=0.01, max_s=0.05)
    runs = 0
    seen_down = False

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 4:
            raise ConnectionResetError("database went away")
        stopping.set()  # the fourth run lasts until the service stops

    async def watch_health() -> None:
        nonlocal seen_down
        while not stopping.is_set():
            seen_down |= parts.health() == {"part:flaky": False}
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(parts.keep_running("flaky", flaky), watch_health()), timeout=5
    )
    assert runs == 4
    assert seen_down


async def test_a_part_that_returns_while_the_service_runs_is_started_again() -> None:
    stopping = asyncio.Event()
    parts = Parts(stopping, initial_s=0.01, max_s=0.01)
    runs = 0

    async def quits() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            stopping.set()

    await asyncio.wait_for(parts.keep_running("quits", quits), timeout=5)
    assert runs == 3


async def test_a_stop_ends_the_retries() -> None:
    stopping = asyncio.Event()
    parts = Parts(stopping, initial_s=0.01, max_s=0.01)

    async def always_fails() -> None:
        stopping.set()
        raise RuntimeError("broken")

    await asyncio.wait_for(parts.keep_running("broken", always_fails), timeout=5)
