"""Short picks: the record that makes each (order, task, line) count once, and the
writes a short pick makes to allocations and backorders. The caller holds the order's
reservation lock (``lock_reservation_of_order``) before any of them."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.inventory import domain
from services.inventory.store.reservations import lock_reservations_of_orders
from shared.schemas.events.inventory import Allocation, BackorderedLine


async def lock_reservation_of_order(
    conn: asyncpg.Connection, order_id: str
) -> tuple[domain.Reservation, domain.ShipTo] | None:
    """The order's reservation, locked, with its allocations (if held) and where the
    order ships; None if the order has none."""
    found = (await lock_reservations_of_orders(conn, [order_id])).get(order_id)
    if found is None:
        return None
    row = await conn.fetchrow(
        "SELECT ship_country, ship_region FROM reservations WHERE reservation_id = $1",
        found.reservation_id,
    )
    assert row is not None
    return found, domain.ShipTo(row["ship_country"] or "", row["ship_region"])


async def record_short_pick(
    conn: asyncpg.Connection, short: domain.ShortPick, reservation_id: str
) -> bool:
    """False if this (order, task, line) was handled before: a repeated event."""
    inserted = await conn.fetchval(
        """INSERT INTO short_picks (order_id, task_id, line_id, reservation_id, sku,
                                    warehouse_id, expected, picked)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1""",
        short.order_id,
        short.task_id,
        short.line_id,
        reservation_id,
        short.sku,
        short.warehouse_id,
        short.expected,
        short.picked,
    )
    return inserted is not None


async def record_outcome(
    conn: asyncpg.Connection, short: domain.ShortPick, outcome: domain.ShortPickOutcome
) -> None:
    replacement = outcome.replacement
    await conn.execute(
        """UPDATE short_picks SET written_off = $4, reallocated = $5, backordered = $6,
                                  unfillable = $7
           WHERE order_id = $1 AND task_id = $2 AND line_id = $3""",
        short.order_id,
        short.task_id,
        short.line_id,
        outcome.written_off.quantity if outcome.written_off else 0,
        sum(a.quantity for a in replacement.allocations),
        sum(b.quantity for b in replacement.backordered),
        replacement.unfillable,
    )


async def write_off_allocation(
    conn: asyncpg.Connection, reservation_id: str, written: Allocation
) -> None:
    """The allocation goes down by the units written off; gone if none is left (none of
    it shipped then: only outstanding units are written off)."""
    key = (reservation_id, written.line_id, written.warehouse_id)
    left = await conn.fetchval(
        """UPDATE allocations SET quantity = quantity - $4
           WHERE reservation_id = $1 AND line_id = $2 AND warehouse_id = $3
             AND quantity > $4
           RETURNING quantity""",
        *key,
        written.quantity,
    )
    if left is not None:
        return
    status = await conn.execute(
        """DELETE FROM allocations
           WHERE reservation_id = $1 AND line_id = $2 AND warehouse_id = $3
             AND quantity = $4 AND committed = 0""",
        *key,
        written.quantity,
    )
    if status != "DELETE 1":  # read under the same lock: cannot happen
        raise LookupError(f"allocation {key} holds fewer than {written.quantity} units")


async def add_backorder_units(
    conn: asyncpg.Connection, reservation_id: str, lines: Sequence[BackorderedLine]
) -> None:
    """Queue these units; a line that already waits (backordered at placement) waits for
    these too, in its place in the queue, with the new date (computed after every unit
    already waiting, its own included)."""
    await conn.executemany(
        """INSERT INTO backorders (reservation_id, line_id, sku, quantity, expected_restock_date)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (reservation_id, line_id) DO UPDATE
           SET quantity = backorders.quantity + EXCLUDED.quantity,
               expected_restock_date = EXCLUDED.expected_restock_date""",
        [(reservation_id, b.line_id, b.sku, b.quantity, b.expected_restock_date) for b in lines],
    )
