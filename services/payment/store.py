"""The payment service's SQL (asyncpg only): payments, authorizations, captures, refunds,
gateway calls, and the sandbox gateway's ledger. What the hot handlers write is collected
in a :class:`PaymentWrites` and written with one statement per table."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from services.payment.domain import (
    Authorization,
    Capture,
    Payment,
    PaymentStatus,
    PendingCapture,
)
from services.payment.gateway import GatewayResult, GatewayUnavailable, LedgerEntry, Operation
from shared.runtime.db import UNREACHABLE
from shared.runtime.writes import Writes
from shared.schemas.common import Money

# --- payments ---


def _money(amount: int | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    return Money(amount_minor=amount, currency=currency)


def _payment(r: asyncpg.Record) -> Payment:
    auth_amount = _money(r["auth_amount"], r["auth_currency"])
    capture_amount = _money(r["capture_amount"], r["capture_currency"])
    return Payment(
        order_id=r["order_id"],
        payment_id=r["payment_id"],
        status=PaymentStatus(r["status"]),
        amount=_money(r["amount_minor"], r["currency"]),
        authorization=Authorization(
            authorization_id=r["authorization_id"],
            gateway_reference=r["auth_reference"],
            amount=auth_amount,
            voided=r["voided_at"] is not None,
        )
        if r["authorization_id"] is not None and auth_amount is not None
        else None,
        capture=Capture(
            capture_id=r["capture_id"],
            gateway_reference=r["capture_reference"],
            amount=capture_amount,
            refunded_minor=r["refunded_minor"],
        )
        if r["capture_id"] is not None and capture_amount is not None
        else None,
        pending_capture=PendingCapture(r["pending_capture_event"], r["pending_shipment_id"])
        if r["pending_capture_event"] is not None
        else None,
    )


async def ensure_payments(conn: asyncpg.Connection, payment_ids: Mapping[str, str]) -> None:
    """Create the orders' payment rows (status new) where they do not exist; ``payment_ids``
    maps order id to payment id. Inserted in order_id order, like the lock that follows."""
    order_ids = sorted(payment_ids)
    await conn.execute(
        """INSERT INTO payments (order_id, payment_id, status)
           SELECT order_id, payment_id, 'new'
             FROM unnest($1::text[], $2::text[]) AS wanted (order_id, payment_id)
            ORDER BY order_id
           ON CONFLICT (order_id) DO NOTHING""",
        order_ids,
        [payment_ids[order_id] for order_id in order_ids],
    )


async def lock_payments(conn: asyncpg.Connection, order_ids: Iterable[str]) -> dict[str, Payment]:
    """Those of the orders' payments that exist, with their authorization and capture,
    row-locked in order_id order (so that two transactions locking several cannot deadlock
    on them)."""
    records = await conn.fetch(
        """SELECT p.order_id, p.payment_id, p.status, p.amount_minor, p.currency,
                  p.pending_capture_event, p.pending_shipment_id,
                  a.authorization_id, a.gateway_reference AS auth_reference,
                  a.amount_minor AS auth_amount, a.currency AS auth_currency, a.voided_at,
                  c.capture_id, c.gateway_reference AS capture_reference,
                  c.amount_minor AS capture_amount, c.currency AS capture_currency,
                  c.refunded_minor
             FROM payments p
             LEFT JOIN authorizations a ON a.order_id = p.order_id
             LEFT JOIN captures c ON c.order_id = p.order_id
            WHERE p.order_id = ANY($1::text[])
            ORDER BY p.order_id
              FOR UPDATE OF p""",
        sorted(order_ids),
    )
    return {r["order_id"]: _payment(r) for r in records}


async def lock_payment(conn: asyncpg.Connection, order_id: str) -> Payment | None:
    """The order's payment with its authorization and capture, locked for this transaction."""
    return (await lock_payments(conn, [order_id])).get(order_id)


SAVE_PAYMENT = """UPDATE payments
                     SET status = $2, amount_minor = $3, currency = $4,
                         pending_capture_event = $5, pending_shipment_id = $6,
                         decline_code = COALESCE($7, decline_code),
                         last_error = COALESCE($8, last_error), updated_at = now()
                   WHERE order_id = $1"""


def _save_args(
    payment: Payment, decline_code: str | None, last_error: str | None
) -> tuple[object, ...]:
    """``decline_code``, ``last_error``: None keeps the stored one."""
    pending = payment.pending_capture
    return (
        payment.order_id,
        payment.status,
        payment.amount.amount_minor if payment.amount else None,
        payment.amount.currency if payment.amount else None,
        pending.event_id if pending else None,
        pending.shipment_id if pending else None,
        decline_code,
        last_error,
    )


async def save_payment(
    conn: asyncpg.Connection,
    payment: Payment,
    *,
    decline_code: str | None = None,
    last_error: str | None = None,
) -> None:
    await conn.execute(SAVE_PAYMENT, *_save_args(payment, decline_code, last_error))


async def note_cancellation(conn: asyncpg.Connection, order_id: str) -> None:
    await conn.execute(
        """UPDATE payments SET order_cancelled_at = COALESCE(order_cancelled_at, now()),
                  updated_at = now()
            WHERE order_id = $1""",
        order_id,
    )


async def void_authorization(
    conn: asyncpg.Connection, authorization_id: str, void_reference: str
) -> None:
    await conn.execute(
        """UPDATE authorizations SET voided_at = now(), void_reference = $2
            WHERE authorization_id = $1 AND voided_at IS NULL""",
        authorization_id,
        void_reference,
    )


# --- what the handlers write at the end ---

INSERT_AUTHORIZATION = """INSERT INTO authorizations (authorization_id, order_id, amount_minor,
                                                      currency, gateway_reference, expires_at)
                          VALUES ($1, $2, $3, $4, $5, $6)"""

INSERT_CAPTURE = """INSERT INTO captures (capture_id, order_id, authorization_id, amount_minor,
                                          currency, gateway_reference, shipment_id)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)"""

INSERT_GATEWAY_CALL = """INSERT INTO gateway_calls (order_id, operation, idempotency_key,
                                                    attempt, event_id, request, outcome,
                                                    response, error, duration_ms)
                         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10)"""


class PaymentWrites:
    """The rows a handler writes, held until :meth:`flush` writes each table with one
    pipelined ``executemany``: a run of records costs a few round trips, not a few each.

    Nothing here is read back before the flush: the handlers keep the payments they change
    in memory, and the sandbox gateway keeps its memory on connections of its own."""

    def __init__(self) -> None:
        # captures refer to authorizations, possibly of the same run
        self._writes = Writes(
            order=(INSERT_GATEWAY_CALL, INSERT_AUTHORIZATION, INSERT_CAPTURE, SAVE_PAYMENT)
        )

    def absorb(self, other: PaymentWrites) -> None:
        """Queue what ``other`` holds after what this one holds (a record's own writes,
        gathered in run order)."""
        self._writes.extend(other._writes)

    def gateway_call(
        self,
        *,
        order_id: str,
        operation: Operation,
        idempotency_key: str,
        attempt: int,
        event_id: str,
        request: dict[str, Any],
        result: GatewayResult | None,
        error: str | None,
        duration_ms: float,
    ) -> None:
        outcome = "error" if result is None else ("approved" if result.approved else "refused")
        self._writes.add(
            INSERT_GATEWAY_CALL,
            order_id,
            operation,
            idempotency_key,
            attempt,
            event_id,
            json.dumps(request),
            outcome,
            json.dumps(result.to_json()) if result is not None else None,
            error,
            duration_ms,
        )

    def authorization(
        self, order_id: str, auth: Authorization, expires_at: datetime | None
    ) -> None:
        self._writes.add(
            INSERT_AUTHORIZATION,
            auth.authorization_id,
            order_id,
            auth.amount.amount_minor,
            auth.amount.currency,
            auth.gateway_reference,
            expires_at,
        )

    def capture(
        self, order_id: str, capture: Capture, authorization_id: str, shipment_id: str | None
    ) -> None:
        self._writes.add(
            INSERT_CAPTURE,
            capture.capture_id,
            order_id,
            authorization_id,
            capture.amount.amount_minor,
            capture.amount.currency,
            capture.gateway_reference,
            shipment_id,
        )

    def payment(
        self, payment: Payment, *, decline_code: str | None = None, last_error: str | None = None
    ) -> None:
        # every save, in order, not only the last: COALESCE keeps an earlier one's error
        self._writes.add(SAVE_PAYMENT, *_save_args(payment, decline_code, last_error))

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write everything held, and forget it."""
        await self._writes.flush(conn)


# --- refunds ---


async def refund_exists(conn: asyncpg.Connection, order_id: str, refund_id: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM refunds WHERE order_id = $1 AND refund_id = $2", order_id, refund_id
    )
    return found is not None


async def insert_refund(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    refund_id: str,
    status: str,
    amount: Money,
    capture_id: str | None,
    gateway_reference: str | None,
    error: str | None,
    reason: str,
    return_id: str | None,
    requested_by: str,
) -> None:
    """Record a refund request's outcome; a 'refunded' one adds to the capture's total."""
    await conn.execute(
        """INSERT INTO refunds (order_id, refund_id, status, amount_minor, currency, capture_id,
                                gateway_reference, error, reason, return_id, requested_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        order_id,
        refund_id,
        status,
        amount.amount_minor,
        amount.currency,
        capture_id,
        gateway_reference,
        error,
        reason,
        return_id,
        requested_by,
    )


# --- the sandbox gateway's ledger ---

ATTACH_TIMEOUT_S = 30.0


def _entry(r: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(
        key=r["idempotency_key"],
        operation=r["operation"],
        request=json.loads(r["request"]),
        calls=r["calls"],
        result=GatewayResult.from_json(json.loads(r["result"])) if r["result"] else None,
        parent_reference=r["parent_reference"],
    )


class PostgresSandboxLedger:
    """The sandbox's memory in ``sandbox_gateway_ledger``.

    Each statement runs on a connection of its own, from a pool of the sandbox's own (as
    many connections as calls in flight, none taken from the service's), never in the
    handler's transaction: a provider's memory does not roll back with ours. The pool is
    opened at start-up by the service's background hook, and closed only after the
    consumer has stopped (``ServiceContext.after_stop``).
    """

    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None
        self._attached = asyncio.Event()

    def attach(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._attached.set()

    async def _run(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            await asyncio.wait_for(self._attached.wait(), ATTACH_TIMEOUT_S)
        except TimeoutError:
            raise GatewayUnavailable("sandbox ledger has no database pool") from None
        assert self._pool is not None
        try:
            return list(await self._pool.fetch(sql, *args))
        except UNREACHABLE as exc:  # as a remote provider would be: no answer
            raise GatewayUnavailable(f"sandbox ledger unreachable: {exc!r}") from exc

    async def begin(
        self,
        key: str,
        operation: Operation,
        request: dict[str, Any],
        parent: str | None,
        answer: GatewayResult | None = None,
    ) -> LedgerEntry:
        [record] = await self._run(
            """INSERT INTO sandbox_gateway_ledger
                   (idempotency_key, operation, request, parent_reference, result, reference,
                    answered_at)
               VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6,
                       CASE WHEN $5::jsonb IS NULL THEN NULL ELSE now() END)
               ON CONFLICT (idempotency_key)
                   DO UPDATE SET calls = sandbox_gateway_ledger.calls + 1
               RETURNING *""",
            key,
            operation,
            json.dumps(request),
            parent,
            json.dumps(answer.to_json()) if answer is not None else None,
            answer.reference if answer is not None else None,
        )
        return _entry(record)

    async def complete(self, key: str, result: GatewayResult) -> None:
        await self._run(
            """UPDATE sandbox_gateway_ledger
                  SET result = $2::jsonb, reference = $3, answered_at = now()
                WHERE idempotency_key = $1""",
            key,
            json.dumps(result.to_json()),
            result.reference,
        )

    async def find(self, reference: str) -> LedgerEntry | None:
        records = await self._run(
            "SELECT * FROM sandbox_gateway_ledger WHERE reference = $1 AND result IS NOT NULL",
            reference,
        )
        return _entry(records[0]) if records else None

    async def children(self, parent_reference: str) -> list[LedgerEntry]:
        records = await self._run(
            """SELECT * FROM sandbox_gateway_ledger
                WHERE parent_reference = $1 AND result IS NOT NULL
                ORDER BY created_at, idempotency_key""",
            parent_reference,
        )
        return [_entry(r) for r in records]
