"""Carrier calls as we made them (``carrier_calls``, in the handler's transaction, queued
until the run ends), and the simulated carrier's memory of sold labels
(``simulated_carrier_labels``, on its own connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import asyncpg

from services.fulfillment.shipping.carrier import CarrierError, Label
from shared.runtime.db import UNREACHABLE
from shared.runtime.writes import Writes

ATTACH_TIMEOUT_S = 30.0


INSERT_CALL = """INSERT INTO carrier_calls (order_id, shipment_id, operation, idempotency_key,
                                           attempt, event_id, request, outcome, response,
                                           error, duration_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb, $10, $11)"""


def record_call(
    writes: Writes,
    *,
    order_id: str,
    shipment_id: str,
    operation: str,
    idempotency_key: str | None,
    attempt: int,
    event_id: str,
    request: dict[str, Any],
    response: Any,
    error: str | None,
    duration_ms: float,
) -> None:
    writes.add(
        INSERT_CALL,
        order_id,
        shipment_id,
        operation,
        idempotency_key,
        attempt,
        event_id,
        json.dumps(request),
        "error" if error is not None else "answered",
        json.dumps(response) if error is None else None,
        error,
        duration_ms,
    )


class PostgresLabelLedger:
    """The simulated carrier's memory in ``simulated_carrier_labels``.

    One statement per sale on a connection of its own, never in the handler's
    transaction: a carrier does not forget a sale because our transaction rolled back.
    Not a pool connection: the handler's transaction holds one already, and a pool's
    release costs a reset round trip per sale. Opened at start-up by a background hook,
    re-opened after a failure.
    """

    def __init__(self) -> None:
        self._connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None
        self._conn: asyncpg.Connection | None = None
        self._attached = asyncio.Event()
        self._lock = asyncio.Lock()

    def attach(self, database_url: str, schema: str) -> None:
        self._connect = partial(
            asyncpg.connect, database_url, server_settings={"search_path": schema}
        )
        self._attached.set()

    async def close(self) -> None:
        async with self._lock:  # not in the middle of a sale
            if self._conn is not None:
                await self._conn.close(timeout=5)
                self._conn = None

    async def remember(self, key: str, request: dict[str, Any], label: Label) -> Label:
        try:
            await asyncio.wait_for(self._attached.wait(), ATTACH_TIMEOUT_S)
        except TimeoutError:
            raise CarrierError("simulated carrier has no database") from None
        assert self._connect is not None
        async with self._lock:
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                stored = await self._conn.fetchval(
                    """INSERT INTO simulated_carrier_labels
                           (idempotency_key, request, label, tracking_number)
                       VALUES ($1, $2::jsonb, $3::jsonb, $4)
                       ON CONFLICT (idempotency_key) DO UPDATE
                           SET calls = simulated_carrier_labels.calls + 1,
                               last_called_at = now()
                       RETURNING label""",
                    key,
                    json.dumps(request),
                    json.dumps(label.to_json()),
                    label.tracking_number,
                )
            except UNREACHABLE as exc:  # as a remote carrier would be: no answer
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                raise CarrierError(f"simulated carrier unreachable: {exc!r}") from exc
        return Label.from_json(json.loads(stored))
