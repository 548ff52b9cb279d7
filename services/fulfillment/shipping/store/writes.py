"""The writes of a run of records, held until the run ends and then sent with one
pipelined ``executemany`` per statement: a run costs a few round trips, not a few per
record.

Safe to defer because nothing in a run reads back what it queued: a handler locks and
reads its rows when the run starts and keeps them up to date in memory. Every queued row
refers to orders and shipments that exist by then, so the order between statements does
not matter; within a statement, rows go in the order they were queued (``carrier_calls``
ids follow the calls)."""

from __future__ import annotations

import asyncpg


class Writes:
    def __init__(self) -> None:
        self._rows: dict[str, list[tuple[object, ...]]] = {}

    def add(self, statement: str, *args: object) -> None:
        self._rows.setdefault(statement, []).append(args)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write everything held, statements in the order first queued, and forget it."""
        held, self._rows = self._rows, {}
        for statement, rows in held.items():
            await conn.executemany(statement, rows)
