"""Orders as picking knows them, and their allocation rounds.

The first statement of a handler both writes and locks the order's row (an upsert):
the runtime applies hundreds of events per transaction, and round trips are what they
cost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from services.fulfillment.picking.domain import Allocated, OrderState

_STATE = """RETURNING order_id, confirmed_at IS NOT NULL AS confirmed,
                     cancelled_at IS NOT NULL AS cancelled"""


_ROUND = "r.round_id, r.reservation_id, r.allocations::text AS allocations, r.received_at"


def _state(row: asyncpg.Record | None) -> OrderState:
    assert row is not None
    return OrderState(row["order_id"], confirmed=row["confirmed"], cancelled=row["cancelled"])


async def note_confirmed(
    conn: asyncpg.Connection,
    order_id: str,
    reservation_id: str,
    backordered_skus: Sequence[str],
    now: datetime,
) -> OrderState:
    row = await conn.fetchrow(
        f"""INSERT INTO orders (order_id, confirmed_at, reservation_id, backordered_skus)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (order_id) DO UPDATE
            SET confirmed_at = coalesce(orders.confirmed_at, EXCLUDED.confirmed_at),
                reservation_id = EXCLUDED.reservation_id,
                backordered_skus = EXCLUDED.backordered_skus, updated_at = now()
            {_STATE}""",
        order_id,
        now,
        reservation_id,
        list(backordered_skus),
    )
    return _state(row)


async def claim_unplanned(conn: asyncpg.Connection, order_id: str, now: datetime) -> list[Round]:
    """The rounds noted before the order could be picked, marked planned (the caller plans
    them now). A statement of its own, after the order's row is locked: its snapshot then
    holds every round committed before the lock, and later ones see the lock's outcome."""
    rows = await conn.fetch(
        f"""UPDATE allocation_rounds r SET planned_at = $2
            WHERE r.order_id = $1 AND r.planned_at IS NULL RETURNING {_ROUND}""",
        order_id,
        now,
    )
    return _rounds(order_id, rows)


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


@dataclass(frozen=True)
class Round:
    order_id: str
    round_id: str
    reservation_id: str
    allocations: list[Allocated]


async def note_round(
    conn: asyncpg.Connection, round_: Round, now: datetime
) -> tuple[OrderState, bool]:
    """Lock the order and note the round, planned now if the order may be picked (the
    caller then plans it). Returns the order and whether the round is new; a round noted
    before (the same allocations again) is not. One round trip."""
    row = await conn.fetchrow(
        f"""WITH o AS (
                INSERT INTO orders (order_id) VALUES ($1)
                ON CONFLICT (order_id) DO UPDATE SET updated_at = now() {_STATE}),
            noted AS (
                INSERT INTO allocation_rounds (order_id, round_id, reservation_id,
                                               allocations, planned_at)
                SELECT o.order_id, $2, $3, $4::jsonb,
                       CASE WHEN o.confirmed AND NOT o.cancelled THEN $5::timestamptz END
                FROM o
                ON CONFLICT DO NOTHING RETURNING 1)
            SELECT o.*, EXISTS (SELECT 1 FROM noted) AS new FROM o""",
        round_.order_id,
        round_.round_id,
        round_.reservation_id,
        json.dumps([asdict(a) for a in round_.allocations]),
        now,
    )
    assert row is not None
    return _state(row), row["new"]


def _rounds(order_id: str, rows: Sequence[asyncpg.Record]) -> list[Round]:
    return [
        Round(
            order_id,
            r["round_id"],
            r["reservation_id"],
            [Allocated(**a) for a in json.loads(r["allocations"])],
        )
        for r in sorted(rows, key=lambda r: (r["received_at"], r["round_id"]))
    ]
