"""Trips (batches and waves): the open one per warehouse and kind, and the due ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


async def lock_open_trips(
    conn: asyncpg.Connection, kinds: Iterable[tuple[str, TripKind]]
) -> list[Trip]:
    """The open trips of these (warehouse, kind), locked in that order."""
    ordered = sorted(set(kinds))
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM trips
            WHERE released_at IS NULL
              AND (warehouse_id, kind) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY warehouse_id, kind FOR UPDATE""",
        [warehouse_id for warehouse_id, _ in ordered],
        [kind for _, kind in ordered],
    )
    return [_trip(r) for r in rows]


async def insert_trips(
    conn: asyncpg.Connection,
    trips: Sequence[Trip],
    released_at: Mapping[str, datetime],
    wake: tuple[str, str],
) -> set[str]:
    """Insert the trips (``released_at``: of those released already) and wake ``wake``
    (channel, payload) at commit; returns the ids inserted. A trip left open is not
    inserted if another transaction opened one first (the partial unique index)."""
    if not trips:
        return set()
    rows = await conn.fetch(
        f"""WITH opened AS (
                INSERT INTO trips ({_COLUMNS}, released_at)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                     $5::timestamptz[], $6::int[], $7::timestamptz[])
                ON CONFLICT (warehouse_id, kind) WHERE released_at IS NULL DO NOTHING
                RETURNING trip_id)
            SELECT trip_id, pg_notify($8, $9)::text AS woken FROM opened""",
        [t.trip_id for t in trips],
        [t.warehouse_id for t in trips],
        [t.kind for t in trips],
        [t.opened_at for t in trips],
        [t.closes_at for t in trips],
        [t.order_count for t in trips],
        [released_at.get(t.trip_id) for t in trips],
        *wake,
    )
    return {r["trip_id"] for r in rows}


async def update_trips(
    conn: asyncpg.Connection, trips: Sequence[Trip], released_at: Mapping[str, datetime]
) -> None:
    """Their order counts, and the release of those in ``released_at``."""
    if trips:
        await conn.executemany(
            """UPDATE trips SET order_count = $2, released_at = coalesce($3, released_at)
               WHERE trip_id = $1""",
            [(t.trip_id, t.order_count, released_at.get(t.trip_id)) for t in trips],
        )


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
