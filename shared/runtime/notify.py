"""Wait for a row to change, woken by Postgres NOTIFY instead of polling.

Writers call ``pg_notify(channel, key)`` in their transaction (delivered at commit);
readers ``async with feed.watch(key) as changed:`` and re-read after ``changed.wait()``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


class ChangeFeed:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.listening = asyncio.Event()

    async def listen(self, pool: asyncpg.Pool, stopping: asyncio.Event) -> None:
        """Hold one connection LISTENing until ``stopping`` is set."""
        async with pool.acquire() as conn:
            await conn.add_listener(self.channel, self._on_notify)
            self.listening.set()
            try:
                await stopping.wait()
            finally:
                self.listening.clear()
                await conn.remove_listener(self.channel, self._on_notify)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for event in self._watchers.get(payload, ()):
            event.set()

    @asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[asyncio.Event]:
        """Register before reading, so a change between read and wait is not missed."""
        event = asyncio.Event()
        self._watchers[key].add(event)
        try:
            yield event
        finally:
            self._watchers[key].discard(event)
            if not self._watchers[key]:
                del self._watchers[key]
