"""Trips (batches and waves): the open one per warehouse and kind, and the due ones."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.fulfillment.picking.domain import Trip, TripKind

_COLUMNS = "trip_id, warehouse_id, kind, opened_at, closes_at, order_count"


def _trip(r: asyncpg.Record) -> Trip:
    return Trip(
        trip_id=r["trip_id"],
        warehouse_id=r["warehouse_id"],
        kind=r["kind"],
        opened_at=r["opened_at"],
        closes_at=r["closes_at"],
        order_count=r["order_count"],
    )


async def lock_open_trip(
    conn: asyncpg.Connection, warehouse_id: str, kind: TripKind
) -> Trip | None:
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM trips
            WHERE warehouse_id = $1 AND kind = $2 AND released_at IS NULL FOR UPDATE""",
        warehouse_id,
        kind,
    )
    return _trip(row) if row else None


async def insert_trip(conn: asyncpg.Connection, trip: Trip) -> bool:
    """False if another transaction opened one first (the partial unique index)."""
    inserted = await conn.fetchval(
        f"""INSERT INTO trips ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (warehouse_id, kind) WHERE released_at IS NULL DO NOTHING
            RETURNING 1""",
        trip.trip_id,
        trip.warehouse_id,
        trip.kind,
        trip.opened_at,
        trip.closes_at,
        trip.order_count,
    )
    return inserted is not None


async def set_order_count(conn: asyncpg.Connection, trip: Trip) -> None:
    await conn.execute(
        "UPDATE trips SET order_count = $2 WHERE trip_id = $1", trip.trip_id, trip.order_count
    )


async def has_order(conn: asyncpg.Connection, trip_id: str, order_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM tasks WHERE trip_id = $1 AND order_id = $2 LIMIT 1", trip_id, order_id
    )
    return found is not None


async def mark_released(conn: asyncpg.Connection, trip_id: str, now: datetime) -> None:
    await conn.execute("UPDATE trips SET released_at = $2 WHERE trip_id = $1", trip_id, now)


async def lock_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Trip]:
    """Open trips past their deadline, locked; another instance's are skipped."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM trips
            WHERE released_at IS NULL AND closes_at <= $1
            ORDER BY closes_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return [_trip(r) for r in rows]


async def next_deadline(conn: asyncpg.Connection) -> datetime | None:
    deadline: datetime | None = await conn.fetchval(
        "SELECT min(closes_at) FROM trips WHERE released_at IS NULL"
    )
    return deadline
