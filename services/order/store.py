"""The order service's SQL (asyncpg only)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from services.order.domain import Order, OrderStatus, Progress
from shared.schemas.common import Reason
from shared.schemas.events.order import SubmitOrder


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


async def placed_submission(conn: asyncpg.Connection, order_id: str) -> SubmitOrder | None:
    """The submission an order was created from."""
    raw = await conn.fetchval("SELECT submission FROM orders WHERE order_id = $1", order_id)
    return SubmitOrder.model_validate_json(raw) if raw is not None else None


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


ORDER_STATE = """order_id, status, version, customer_id, payment, stock, risk, authorization_id,
                 reservation_id, backordered_skus, expected_ship_date, progress"""


async def lock_order(conn: asyncpg.Connection, order_id: str) -> Order | None:
    """The order's saga state, row-locked for the rest of the transaction."""
    r = await conn.fetchrow(
        f"SELECT {ORDER_STATE} FROM orders WHERE order_id = $1 FOR UPDATE", order_id
    )
    return _order(r) if r else None


async def lock_orders(conn: asyncpg.Connection, order_ids: Iterable[str]) -> dict[str, Order]:
    """Those of the orders that exist, row-locked in order_id order (so that two
    transactions locking several cannot deadlock on them)."""
    records = await conn.fetch(
        f"""SELECT {ORDER_STATE} FROM orders WHERE order_id = ANY($1::text[])
            ORDER BY order_id FOR UPDATE""",
        sorted(order_ids),
    )
    return {r["order_id"]: _order(r) for r in records}


def _order(r: asyncpg.Record) -> Order:
    return Order(
        order_id=r["order_id"],
        status=OrderStatus(r["status"]),
        version=r["version"],
        customer_id=r["customer_id"],
        payment=r["payment"],
        stock=r["stock"],
        risk=r["risk"],
        authorization_id=r["authorization_id"],
        reservation_id=r["reservation_id"],
        backordered_skus=tuple(r["backordered_skus"]),
        expected_ship_date=r["expected_ship_date"],
        progress=Progress.from_json(json.loads(r["progress"])),
    )


SAVE_ORDER = """UPDATE orders SET status = $2, version = $3, payment = $4, stock = $5, risk = $6,
                  authorization_id = $7, reservation_id = $8, backordered_skus = $9,
                  expected_ship_date = $10, progress = $12::jsonb,
                  reasons = CASE WHEN $11::jsonb = '[]'::jsonb THEN reasons ELSE $11::jsonb END,
                  updated_at = now()
           WHERE order_id = $1"""


async def save_order(conn: asyncpg.Connection, order: Order, reasons: list[Reason]) -> None:
    """``reasons`` replace the order's when there are any (empty: keep them)."""
    await conn.execute(SAVE_ORDER, *_save_args(order, reasons))


async def save_orders(
    conn: asyncpg.Connection, orders: Sequence[tuple[Order, list[Reason]]]
) -> None:
    """Many orders in one pipelined round trip."""
    if orders:
        await conn.executemany(SAVE_ORDER, [_save_args(o, reasons) for o, reasons in orders])


def _save_args(order: Order, reasons: list[Reason]) -> tuple[object, ...]:
    return (
        order.order_id,
        order.status,
        order.version,
        order.payment,
        order.stock,
        order.risk,
        order.authorization_id,
        order.reservation_id,
        list(order.backordered_skus),
        order.expected_ship_date,
        json.dumps([r.model_dump() for r in reasons]),
        json.dumps(order.progress.to_json()),
    )


async def record_refusal(
    conn: asyncpg.Connection, event_id: str, order_id: str, type_: str, code: str, message: str
) -> None:
    await conn.execute(
        """INSERT INTO refused_requests (event_id, order_id, type, code, message)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        event_id,
        order_id,
        type_,
        code,
        message,
    )
