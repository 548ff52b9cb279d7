"""A run's held writes (shared/runtime/writes.py): one executemany per statement, in order."""

from __future__ import annotations

from typing import Any

from shared.runtime.writes import Writes


class RecordingConnection:
    def __init__(self) -> None:
        self.executed: list[tuple[str, list[tuple[Any, ...]]]] = []

    async def executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        self.executed.append((statement, list(rows)))


async def test_one_executemany_per_statement_rows_in_the_order_queued() -> None:
    writes = Writes()
    writes.add("INSERT calls", "rates", 1)
    writes.add("INSERT label", "s1")
    writes.add("INSERT calls", "buy_label", 1)
    writes.add("INSERT calls", "rates", 2)
    conn = RecordingConnection()
    await writes.flush(conn)  # type: ignore[arg-type]
    assert conn.executed == [
        ("INSERT calls", [("rates", 1), ("buy_label", 1), ("rates", 2)]),
        ("INSERT label", [("s1",)]),
    ]


async def test_a_flush_forgets_what_it_wrote() -> None:
    writes = Writes()
    conn = RecordingConnection()
    await writes.flush(conn)  # type: ignore[arg-type]
    writes.add("UPDATE shipments", "s1")
    await writes.flush(conn)  # type: ignore[arg-type]
    await writes.flush(conn)  # type: ignore[arg-type]
    assert conn.executed == [("UPDATE shipments", [("s1",)])]


async def test_statements_given_an_order_go_first_in_that_order() -> None:
    writes = Writes(order=("INSERT authorization", "INSERT capture"))
    writes.add("UPDATE payment", "o1")
    writes.add("INSERT capture", "c1")
    writes.add("INSERT authorization", "a1")
    conn = RecordingConnection()
    await writes.flush(conn)  # type: ignore[arg-type]
    assert conn.executed == [
        ("INSERT authorization", [("a1",)]),
        ("INSERT capture", [("c1",)]),
        ("UPDATE payment", [("o1",)]),
    ]
