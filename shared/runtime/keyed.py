"""A run's calls to the outside world, made for many orders at once.

A gateway or carrier answers each call after a round trip of its own (a real one in
hundreds of milliseconds). Called record by record, a run of 500 placements waits for
500 answers in a row, and the service handles as many orders per second as it gets
answers. The records of different orders do not depend on each other, so
:func:`each_key_in_turn` makes the calls of different keys (orders) concurrently and those
of one key one after another, in the run's order. The steps must not touch the unit of
work's connection (one connection serves one statement at a time): each step writes into
a sink of its own, and the handler applies the sinks in run order afterwards, so the run
leaves the same rows and emits the same events, in the same order, as record by record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Protocol, TypeVar

from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message

T = TypeVar("T")
R = TypeVar("R")


async def each_key_in_turn(
    items: Sequence[T],
    key: Callable[[T], Hashable],
    step: Callable[[T], Awaitable[R]],
    *,
    at_once: int,
) -> list[R]:
    """``step`` of every item; the items of one key one after another in the given order,
    up to ``at_once`` keys at a time. Results in the items' order.

    The first step to fail cancels the others and its exception is raised as it is (not
    wrapped in a group), so the caller's handling (transient or not) sees it unchanged.
    """
    results: dict[int, R] = {}
    by_key: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        by_key.setdefault(key(item), []).append(i)
    gate = asyncio.Semaphore(at_once)

    async def in_turn(indices: list[int]) -> None:
        async with gate:
            for i in indices:
                results[i] = await step(items[i])

    try:
        async with asyncio.TaskGroup() as group:
            for indices in by_key.values():
                group.create_task(in_turn(indices))
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [results[i] for i in range(len(items))]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


class Emits(Protocol):
    """What a step may do with events: the unit of work, or a :class:`HeldEvents`."""

    async def emit(self, message: Message, *, cause: Envelope | None = None) -> object: ...


class HeldEvents:
    """Stands in for the unit of work's ``emit`` in a concurrent step: keeps the events
    until :meth:`emit_into` appends them, in the order they were emitted."""

    def __init__(self) -> None:
        self._held: list[tuple[Message, Envelope | None]] = []

    async def emit(self, message: Message, *, cause: Envelope | None = None) -> None:
        self._held.append((message, cause))

    async def emit_into(self, uow: UnitOfWork) -> None:
        for message, cause in self._held:
            await uow.emit(message, cause=cause)
        self._held.clear()


class KeyedLocks:
    """One lock per key, made on first use and forgotten when nobody holds or waits for
    it: calls about one thing (an authorization, a label) one at a time, others at once."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
