"""Orders as picking knows them, and their allocation rounds.

A run of order and allocation events costs two reads — one upsert that both creates and
locks the run's orders, then their rounds (with the tasks planned from them), in a
statement of its own after the lock, so that it sees every round committed before — and
at most one write per table at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime

import asyncpg

from services.fulfillment.picking.domain import (
    Allocated,
    Confirmation,
    OrderBook,
    OrderState,
    Round,
    StoredRound,
)

_STATE = """RETURNING order_id, confirmed_at IS NOT NULL AS confirmed,
                     cancelled_at IS NOT NULL AS cancelled"""


def _state(row: asyncpg.Record | None) -> OrderState:
    assert row is not None
    return OrderState(row["order_id"], confirmed=row["confirmed"], cancelled=row["cancelled"])


async def load_book(conn: asyncpg.Connection, order_ids: Iterable[str]) -> OrderBook:
    """The orders, each created if it is the first event about it, locked in order id
    order (two transactions locking several cannot deadlock on them), with their rounds."""
    rows = await conn.fetch(
        f"""INSERT INTO orders (order_id) SELECT unnest($1::text[])
            ON CONFLICT (order_id) DO UPDATE SET updated_at = now()
            {_STATE}, now() AS now""",
        sorted(set(order_ids)),
    )
    assert rows, "a book of no orders"
    orders = {r["order_id"]: _state(r) for r in rows}
    rounds: dict[str, dict[str, StoredRound]] = {}
    for stored in await _rounds(conn, list(orders)):
        rounds.setdefault(stored.round.order_id, {})[stored.round.round_id] = stored
    return OrderBook(orders, rounds, now=rows[0]["now"])


async def _rounds(conn: asyncpg.Connection, order_ids: list[str]) -> list[StoredRound]:
    """Every round of the orders, with the tasks planned from it."""
    rows = await conn.fetch(
        """SELECT r.order_id, r.round_id, r.reservation_id, r.allocations::text AS allocations,
                  r.received_at, r.planned_at IS NOT NULL AS planned,
                  coalesce(array_agg(t.task_id ORDER BY t.task_id)
                           FILTER (WHERE t.task_id IS NOT NULL), '{}') AS task_ids,
                  coalesce(array_agg(t.trip_id ORDER BY t.task_id)
                           FILTER (WHERE t.task_id IS NOT NULL), '{}') AS trip_ids
             FROM allocation_rounds r
             LEFT JOIN tasks t ON t.order_id = r.order_id AND t.round_id = r.round_id
            WHERE r.order_id = ANY($1::text[])
            GROUP BY r.order_id, r.round_id""",
        order_ids,
    )
    return [
        StoredRound(
            Round(
                r["order_id"],
                r["round_id"],
                r["reservation_id"],
                [Allocated(**a) for a in json.loads(r["allocations"])],
            ),
            received_at=r["received_at"],
            planned=r["planned"],
            tasks=tuple(zip(r["task_ids"], r["trip_ids"], strict=True)),
        )
        for r in rows
    ]


async def save_book(conn: asyncpg.Connection, book: OrderBook, now: datetime) -> None:
    """The confirmations and the rounds noted or planned since the book was loaded; a
    statement each."""
    await _save_confirmations(conn, book.confirmations, now)
    await _save_rounds(conn, list(book.changed_rounds.values()), now)


async def _save_confirmations(
    conn: asyncpg.Connection, confirmations: dict[str, Confirmation], now: datetime
) -> None:
    if not confirmations:
        return
    await conn.executemany(
        """UPDATE orders SET confirmed_at = coalesce(confirmed_at, $2), reservation_id = $3,
                             backordered_skus = $4, updated_at = now()
           WHERE order_id = $1""",
        [
            (order_id, now, c.reservation_id, list(c.backordered_skus))
            for order_id, c in confirmations.items()
        ],
    )


async def _save_rounds(
    conn: asyncpg.Connection, rounds: Sequence[StoredRound], now: datetime
) -> None:
    """New rounds, and stored ones planned now (of those only ``planned_at`` changes)."""
    if not rounds:
        return
    await conn.executemany(
        """INSERT INTO allocation_rounds (order_id, round_id, reservation_id, allocations,
                                          planned_at)
           VALUES ($1, $2, $3, $4::jsonb, $5)
           ON CONFLICT (order_id, round_id) DO UPDATE SET planned_at = EXCLUDED.planned_at""",
        [
            (
                r.round.order_id,
                r.round.round_id,
                r.round.reservation_id,
                json.dumps([asdict(a) for a in r.round.allocations]),
                now if r.planned else None,
            )
            for r in rounds
        ],
    )


async def note_cancelled(conn: asyncpg.Connection, order_id: str, now: datetime) -> OrderState:
    row = await conn.fetchrow(
        f"""INSERT INTO orders (order_id, cancelled_at) VALUES ($1, $2)
            ON CONFLICT (order_id) DO UPDATE
            SET cancelled_at = coalesce(orders.cancelled_at, EXCLUDED.cancelled_at),
                updated_at = now()
            {_STATE}""",
        order_id,
        now,
    )
    return _state(row)
