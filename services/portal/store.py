"""The portal's SQL (asyncpg only): order-tracking projection reads and writes."""

from __future__ import annotations

import json
from dataclasses import asdict

import asyncpg

from services.portal.domain import OrderView, TimelineEntry

ORDER_CHANNEL = "portal_order_changed"


async def lock_view(conn: asyncpg.Connection, order_id: str) -> OrderView | None:
    """Current view, row-locked for the rest of the transaction."""
    record = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
    return _view(record) if record else None


async def get_view(conn: asyncpg.Connection | asyncpg.Pool, order_id: str) -> OrderView | None:
    record = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)
    return _view(record) if record else None


async def get_timeline(
    conn: asyncpg.Connection | asyncpg.Pool, order_id: str
) -> list[TimelineEntry]:
    records = await conn.fetch(
        """SELECT version, event_type, status, occurred_at, reasons FROM order_timeline
           WHERE order_id = $1 ORDER BY version""",
        order_id,
    )
    return [
        TimelineEntry(
            r["version"], r["event_type"], r["status"], r["occurred_at"], json.loads(r["reasons"])
        )
        for r in records
    ]


async def save(conn: asyncpg.Connection, view: OrderView, entry: TimelineEntry) -> None:
    v = asdict(view)
    await conn.execute(
        """INSERT INTO orders (order_id, version, status, customer_id, storefront_id,
                               storefront_reference, currency, total_minor, lines, reasons,
                               updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11)
           ON CONFLICT (order_id) DO UPDATE SET
             version = EXCLUDED.version, status = EXCLUDED.status,
             customer_id = EXCLUDED.customer_id, storefront_id = EXCLUDED.storefront_id,
             storefront_reference = EXCLUDED.storefront_reference, currency = EXCLUDED.currency,
             total_minor = EXCLUDED.total_minor, lines = EXCLUDED.lines,
             reasons = EXCLUDED.reasons, updated_at = EXCLUDED.updated_at""",
        v["order_id"],
        v["version"],
        v["status"],
        v["customer_id"],
        v["storefront_id"],
        v["storefront_reference"],
        v["currency"],
        v["total_minor"],
        json.dumps(v["lines"]),
        json.dumps(v["reasons"]),
        v["updated_at"],
    )
    await conn.execute(
        """INSERT INTO order_timeline (order_id, version, event_type, status, occurred_at, reasons)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING""",
        view.order_id,
        entry.version,
        entry.event_type,
        entry.status,
        entry.occurred_at,
        json.dumps(entry.reasons),
    )
    await conn.execute("SELECT pg_notify($1, $2)", ORDER_CHANNEL, view.order_id)


def _view(r: asyncpg.Record) -> OrderView:
    return OrderView(
        order_id=r["order_id"],
        version=r["version"],
        status=r["status"],
        updated_at=r["updated_at"],
        customer_id=r["customer_id"],
        storefront_id=r["storefront_id"],
        storefront_reference=r["storefront_reference"],
        currency=r["currency"],
        total_minor=r["total_minor"],
        lines=json.loads(r["lines"]),
        reasons=json.loads(r["reasons"]),
    )
