"""Reservations, their allocations and backorders, receipts and committed shipments.

The reservation row is the lock for everything about one order (``FOR NO KEY UPDATE``):
release, commit and backorder allocation take it before any stock row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from services.inventory import domain
from shared.schemas.events.inventory import Allocation, BackorderedLine

# --- reservations ---


async def reservation_exists(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1)", order_id
        )
    )


async def insert_reservation(
    conn: asyncpg.Connection,
    *,
    reservation_id: str,
    order_id: str,
    status: str,
    ship_to: domain.ShipTo | None = None,
) -> bool:
    """False if the order already has one (a replayed order.placed)."""
    inserted = await conn.fetchval(
        """INSERT INTO reservations (reservation_id, order_id, status, ship_country, ship_region)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1""",
        reservation_id,
        order_id,
        status,
        ship_to.country if ship_to else None,
        ship_to.region if ship_to else None,
    )
    return inserted is not None


async def lock_reservation(conn: asyncpg.Connection, order_id: str) -> tuple[str, str] | None:
    """(reservation id, status) of the order's reservation, locked."""
    row = await conn.fetchrow(
        """SELECT reservation_id, status FROM reservations WHERE order_id = $1
           FOR NO KEY UPDATE""",
        order_id,
    )
    return (row["reservation_id"], row["status"]) if row else None


async def lock_reservations(conn: asyncpg.Connection, reservation_ids: Iterable[str]) -> set[str]:
    """Lock these reservations (in id order); returns those still held."""
    rows = await conn.fetch(
        """SELECT reservation_id, status FROM reservations
           WHERE reservation_id = ANY($1::text[]) ORDER BY reservation_id FOR NO KEY UPDATE""",
        sorted(set(reservation_ids)),
    )
    return {r["reservation_id"] for r in rows if r["status"] == "held"}


async def set_status(conn: asyncpg.Connection, reservation_id: str, status: str) -> None:
    await conn.execute(
        "UPDATE reservations SET status = $2, updated_at = now() WHERE reservation_id = $1",
        reservation_id,
        status,
    )


async def add_allocations(
    conn: asyncpg.Connection, reservation_id: str, allocations: Sequence[Allocation]
) -> None:
    await conn.executemany(
        """INSERT INTO allocations (reservation_id, line_id, sku, warehouse_id, quantity)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (reservation_id, line_id, warehouse_id)
           DO UPDATE SET quantity = allocations.quantity + EXCLUDED.quantity""",
        [(reservation_id, a.line_id, a.sku, a.warehouse_id, a.quantity) for a in allocations],
    )


async def held(conn: asyncpg.Connection, reservation_id: str) -> list[domain.Held]:
    rows = await conn.fetch(
        """SELECT line_id, sku, warehouse_id, quantity, committed FROM allocations
           WHERE reservation_id = $1 ORDER BY line_id, warehouse_id""",
        reservation_id,
    )
    return [
        domain.Held(r["line_id"], r["sku"], r["warehouse_id"], r["quantity"], r["committed"])
        for r in rows
    ]


async def mark_committed(
    conn: asyncpg.Connection, reservation_id: str, allocations: Sequence[Allocation]
) -> None:
    await conn.executemany(
        """UPDATE allocations SET committed = committed + $4
           WHERE reservation_id = $1 AND line_id = $2 AND warehouse_id = $3""",
        [(reservation_id, a.line_id, a.warehouse_id, a.quantity) for a in allocations],
    )


async def fully_committed(conn: asyncpg.Connection, reservation_id: str) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT NOT EXISTS (SELECT 1 FROM allocations
                                  WHERE reservation_id = $1 AND committed < quantity)
                  AND NOT EXISTS (SELECT 1 FROM backorders WHERE reservation_id = $1)""",
            reservation_id,
        )
    )


async def record_shipment(
    conn: asyncpg.Connection,
    *,
    shipment_id: str,
    reservation_id: str | None,
    order_id: str,
    warehouse_id: str,
) -> bool:
    """False if this shipment was committed before."""
    inserted = await conn.fetchval(
        """INSERT INTO shipments (shipment_id, reservation_id, order_id, warehouse_id)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1""",
        shipment_id,
        reservation_id,
        order_id,
        warehouse_id,
    )
    return inserted is not None


# --- backorders ---


async def add_backorders(
    conn: asyncpg.Connection, reservation_id: str, lines: Sequence[BackorderedLine]
) -> None:
    await conn.executemany(
        """INSERT INTO backorders (reservation_id, line_id, sku, quantity, expected_restock_date)
           VALUES ($1, $2, $3, $4, $5)""",
        [(reservation_id, b.line_id, b.sku, b.quantity, b.expected_restock_date) for b in lines],
    )


async def waiting_units(conn: asyncpg.Connection, skus: Iterable[str]) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT sku, sum(quantity)::integer AS units FROM backorders
           WHERE sku = ANY($1::text[]) GROUP BY sku""",
        list(skus),
    )
    return {r["sku"]: r["units"] for r in rows}


def _backorder(r: asyncpg.Record) -> domain.Backorder:
    return domain.Backorder(
        reservation_id=r["reservation_id"],
        order_id=r["order_id"],
        line_id=r["line_id"],
        sku=r["sku"],
        quantity=r["quantity"],
        seq=r["seq"],
        expected_restock_date=r["expected_restock_date"],
    )


_BACKORDERS = """SELECT b.reservation_id, r.order_id, b.line_id, b.sku, b.quantity, b.seq,
                         b.expected_restock_date
                  FROM backorders b JOIN reservations r USING (reservation_id)"""


async def backorder_queue(conn: asyncpg.Connection, sku: str) -> list[domain.Backorder]:
    """Backorders waiting for ``sku``, oldest first."""
    rows = await conn.fetch(f"{_BACKORDERS} WHERE b.sku = $1 ORDER BY b.seq", sku)
    return [_backorder(r) for r in rows]


async def backorders_of(conn: asyncpg.Connection, reservation_id: str) -> list[domain.Backorder]:
    rows = await conn.fetch(
        f"{_BACKORDERS} WHERE b.reservation_id = $1 ORDER BY b.seq", reservation_id
    )
    return [_backorder(r) for r in rows]


async def reduce_backorders(conn: asyncpg.Connection, served: Sequence[domain.Served]) -> None:
    """Served units leave the queue; a fully served backorder is deleted."""
    for s in served:
        b = s.backorder
        if s.remaining > 0:
            await conn.execute(
                "UPDATE backorders SET quantity = $3 WHERE reservation_id = $1 AND line_id = $2",
                b.reservation_id,
                b.line_id,
                s.remaining,
            )
        else:
            await conn.execute(
                "DELETE FROM backorders WHERE reservation_id = $1 AND line_id = $2",
                b.reservation_id,
                b.line_id,
            )


async def drop_backorders(conn: asyncpg.Connection, reservation_id: str) -> None:
    await conn.execute("DELETE FROM backorders WHERE reservation_id = $1", reservation_id)


# --- receipts ---


async def record_receipt(
    conn: asyncpg.Connection,
    *,
    receipt_id: str,
    sku: str,
    warehouse_id: str,
    quantity: int,
    source: str,
    reference: str = "",
    received_by: str = "",
    order_id: str | None = None,
    return_id: str | None = None,
) -> bool:
    """False if this receipt was booked before (a retried command)."""
    inserted = await conn.fetchval(
        """INSERT INTO receipts (receipt_id, sku, warehouse_id, quantity, source, reference,
                                 received_by, order_id, return_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING 1""",
        receipt_id,
        sku,
        warehouse_id,
        quantity,
        source,
        reference,
        received_by,
        order_id,
        return_id,
    )
    return inserted is not None
