"""Reservations, their allocations and backorders, receipts and committed shipments.

The reservation row is the lock for everything about one order (``FOR NO KEY UPDATE``):
release, commit and backorder allocation take it before any stock row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

import asyncpg

from services.inventory import domain
from shared.schemas.events.inventory import Allocation, BackorderedLine

# --- reservations ---


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


async def claim_reservations(
    conn: asyncpg.Connection, placements: Sequence[tuple[str, domain.ShipTo]]
) -> set[str]:
    """A held reservation for each (order id, ship-to) whose order has none yet, in one
    round trip (inserted in reservation id order); the order ids that got one. An order
    placed before, or cancelled before it was placed, keeps the one it has."""
    first: dict[str, tuple[str, domain.ShipTo]] = {}
    for order_id, ship_to in placements:
        first.setdefault(domain.reservation_id_for(order_id), (order_id, ship_to))
    claims = sorted(first.items())
    if not claims:
        return set()
    rows = await conn.fetch(
        """INSERT INTO reservations (reservation_id, order_id, status, ship_country, ship_region)
           SELECT reservation_id, order_id, 'held', ship_country, ship_region
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                AS c (reservation_id, order_id, ship_country, ship_region)
           ON CONFLICT DO NOTHING RETURNING order_id""",
        [reservation_id for reservation_id, _ in claims],
        [order_id for _, (order_id, _) in claims],
        [ship_to.country for _, (_, ship_to) in claims],
        [ship_to.region for _, (_, ship_to) in claims],
    )
    return {r["order_id"] for r in rows}


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


async def lock_reservations_of_orders(
    conn: asyncpg.Connection, order_ids: Iterable[str]
) -> dict[str, domain.Reservation]:
    """The orders' reservations, by order id, locked in reservation id order; the held
    ones with their allocations and whether units of them wait on backorder. Two round
    trips: what is read after the lock is what the lock protects."""
    rows = await conn.fetch(
        """SELECT reservation_id, order_id, status FROM reservations
           WHERE order_id = ANY($1::text[]) ORDER BY reservation_id FOR NO KEY UPDATE""",
        sorted(set(order_ids)),
    )
    found = {
        r["order_id"]: domain.Reservation(r["reservation_id"], r["order_id"], r["status"])
        for r in rows
    }
    held_ids = [r.reservation_id for r in found.values() if r.status == "held"]
    if not held_ids:
        return found
    # one row per allocation, or one without an allocation for a reservation that has none
    held = await conn.fetch(
        """SELECT r.reservation_id, a.line_id, a.sku, a.warehouse_id, a.quantity, a.committed,
                  EXISTS (SELECT 1 FROM backorders b
                          WHERE b.reservation_id = r.reservation_id) AS backordered
           FROM unnest($1::text[]) AS r (reservation_id)
                LEFT JOIN allocations a ON a.reservation_id = r.reservation_id
           ORDER BY r.reservation_id, a.line_id, a.warehouse_id""",
        held_ids,
    )
    allocations: dict[str, list[domain.Held]] = defaultdict(list)
    backordered: set[str] = set()
    for r in held:
        if r["line_id"] is not None:
            allocations[r["reservation_id"]].append(_held(r))
        if r["backordered"]:
            backordered.add(r["reservation_id"])
    return {
        order_id: replace(
            reservation,
            held=tuple(allocations[reservation.reservation_id]),
            backordered=reservation.reservation_id in backordered,
        )
        for order_id, reservation in found.items()
    }


async def set_status(conn: asyncpg.Connection, reservation_id: str, status: str) -> None:
    await set_statuses(conn, [reservation_id], status)


async def set_statuses(
    conn: asyncpg.Connection, reservation_ids: Collection[str], status: str
) -> None:
    if not reservation_ids:
        return
    await conn.execute(
        """UPDATE reservations SET status = $2, updated_at = now()
           WHERE reservation_id = ANY($1::text[])""",
        sorted(reservation_ids),
        status,
    )


async def add_allocations(
    conn: asyncpg.Connection, allocations: Sequence[tuple[str, Allocation]]
) -> None:
    """(reservation id, allocation) pairs, in one pipelined round trip."""
    if not allocations:
        return
    await conn.executemany(
        """INSERT INTO allocations (reservation_id, line_id, sku, warehouse_id, quantity)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (reservation_id, line_id, warehouse_id)
           DO UPDATE SET quantity = allocations.quantity + EXCLUDED.quantity""",
        [(rid, a.line_id, a.sku, a.warehouse_id, a.quantity) for rid, a in allocations],
    )


async def held(conn: asyncpg.Connection, reservation_id: str) -> list[domain.Held]:
    rows = await conn.fetch(
        """SELECT line_id, sku, warehouse_id, quantity, committed FROM allocations
           WHERE reservation_id = $1 ORDER BY line_id, warehouse_id""",
        reservation_id,
    )
    return [_held(r) for r in rows]


def _held(r: asyncpg.Record) -> domain.Held:
    return domain.Held(r["line_id"], r["sku"], r["warehouse_id"], r["quantity"], r["committed"])


async def mark_committed(
    conn: asyncpg.Connection, allocations: Sequence[tuple[str, Allocation]]
) -> None:
    """(reservation id, shipped allocation) pairs, in one pipelined round trip."""
    if not allocations:
        return
    await conn.executemany(
        """UPDATE allocations SET committed = committed + $4
           WHERE reservation_id = $1 AND line_id = $2 AND warehouse_id = $3""",
        [(rid, a.line_id, a.warehouse_id, a.quantity) for rid, a in allocations],
    )


async def record_shipments(
    conn: asyncpg.Connection, shipments: Sequence[tuple[str, str, str, str]]
) -> set[str]:
    """(shipment id, reservation id, order id, warehouse id) rows, the first per shipment
    id, in one round trip; the shipment ids not committed before."""
    first: dict[str, tuple[str, str, str, str]] = {}
    for shipment in shipments:
        first.setdefault(shipment[0], shipment)
    if not first:
        return set()
    rows = await conn.fetch(
        """INSERT INTO shipments (shipment_id, reservation_id, order_id, warehouse_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
           ON CONFLICT DO NOTHING RETURNING shipment_id""",
        *(list(column) for column in zip(*first.values(), strict=True)),
    )
    return {r["shipment_id"] for r in rows}


# --- backorders ---


async def add_backorders(
    conn: asyncpg.Connection, lines: Sequence[tuple[str, BackorderedLine]]
) -> None:
    """(reservation id, backordered line) pairs, queued in the order given, in one
    pipelined round trip."""
    if not lines:
        return
    await conn.executemany(
        """INSERT INTO backorders (reservation_id, line_id, sku, quantity, expected_restock_date)
           VALUES ($1, $2, $3, $4, $5)""",
        [(rid, b.line_id, b.sku, b.quantity, b.expected_restock_date) for rid, b in lines],
    )


async def waiting_units(conn: asyncpg.Connection, skus: Collection[str]) -> dict[str, int]:
    if not skus:
        return {}
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
