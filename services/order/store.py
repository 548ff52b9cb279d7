"""The order service's SQL (asyncpg only)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from shared.schemas.common import Reason


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    status: str
    version: int
    reasons: list[Reason]


def _row(record: asyncpg.Record) -> OrderRow:
    return OrderRow(
        order_id=record["order_id"],
        status=record["status"],
        version=record["version"],
        reasons=[Reason.model_validate(r) for r in json.loads(record["reasons"])],
    )


async def get_order(conn: asyncpg.Connection, order_id: str) -> OrderRow | None:
    record = await conn.fetchrow(
        "SELECT order_id, status, version, reasons FROM orders WHERE order_id = $1", order_id
    )
    return _row(record) if record else None


async def insert_order(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    storefront_id: str,
    storefront_reference: str,
    customer_id: str | None,
    status: str,
    currency: str | None,
    total_minor: int | None,
    submission: str,
    reasons: list[Reason],
) -> bool:
    """Insert version 1 of an order; False if it already exists (a resubmission)."""
    inserted = await conn.fetchval(
        """INSERT INTO orders (order_id, storefront_id, storefront_reference, customer_id,
                               status, version, currency, total_minor, submission, reasons)
           VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8::jsonb, $9::jsonb)
           ON CONFLICT DO NOTHING RETURNING 1""",
        order_id,
        storefront_id,
        storefront_reference,
        customer_id,
        status,
        currency,
        total_minor,
        submission,
        json.dumps([r.model_dump() for r in reasons]),
    )
    return inserted is not None


async def find_idempotency_key(conn: asyncpg.Connection, key: str) -> tuple[str, str] | None:
    """(request hash, order id) stored for this key, locking it for this transaction."""
    record = await conn.fetchrow(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE key = $1 FOR UPDATE", key
    )
    return (record["request_hash"], record["order_id"]) if record else None


async def save_idempotency_key(
    conn: asyncpg.Connection, key: str, request_hash: str, order_id: str
) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3)
           ON CONFLICT (key) DO NOTHING RETURNING 1""",
        key,
        request_hash,
        order_id,
    )
    return inserted is not None
