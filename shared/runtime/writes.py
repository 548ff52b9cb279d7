"""The writes of a run of records, held until the run ends and then sent with one
pipelined ``executemany`` per statement: a run costs a few round trips, not a few per
record.

Safe to defer when nothing in the run reads back what it queued: the handler locks and
reads its rows when the run starts and keeps them up to date in memory. Statements go in
the order first queued, except those named in ``order``, which go first, in that order
(a row that refers to another table's rows queued in the same run); within a statement,
rows go in the order they were queued."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


class Writes:
    def __init__(self, order: Sequence[str] = ()) -> None:
        self._order = tuple(order)
        self._rows = self._empty()

    def _empty(self) -> dict[str, list[tuple[object, ...]]]:
        return {statement: [] for statement in self._order}

    def add(self, statement: str, *args: object) -> None:
        self._rows.setdefault(statement, []).append(args)

    def extend(self, other: Writes) -> None:
        """Queue ``other``'s rows after this one's, as if added here in that order."""
        for statement, rows in other._rows.items():
            self._rows.setdefault(statement, []).extend(rows)

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write everything held, and forget it."""
        held, self._rows = self._rows, self._empty()
        for statement, rows in held.items():
            if rows:
                await conn.executemany(statement, rows)
