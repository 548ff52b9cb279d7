"""Confirmations by the id the device chose, with the receipt that was answered."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class ConfirmationRow:
    confirmation_id: str
    task_id: str
    line_id: str | None
    sku: str
    location: str | None
    quantity: int
    closes_item: bool
    picker_id: str
    source: str
    receipt: dict[str, Any]  # accepted, error.code: see scans.ScanReceipt

    @property
    def accepted(self) -> bool:
        return bool(self.receipt["accepted"])

    @property
    def code(self) -> str | None:
        error = self.receipt.get("error")
        return error["code"] if error else None


_COLUMNS = """confirmation_id, task_id, line_id, sku, location, quantity, closes_item,
              picker_id, source"""


async def find(conn: asyncpg.Connection, ids: Iterable[str]) -> dict[str, ConfirmationRow]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS}, receipt::text AS receipt FROM confirmations
            WHERE confirmation_id = ANY($1::text[])""",
        list(set(ids)),
    )
    return {
        r["confirmation_id"]: ConfirmationRow(
            **{k: v for k, v in r.items() if k != "receipt"}, receipt=json.loads(r["receipt"])
        )
        for r in rows
    }


async def insert_many(conn: asyncpg.Connection, rows: Sequence[ConfirmationRow]) -> None:
    if not rows:
        return
    await conn.executemany(
        f"""INSERT INTO confirmations ({_COLUMNS}, accepted, code, receipt)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)""",
        [_values(c) for c in rows],
    )


def _values(c: ConfirmationRow) -> tuple[object, ...]:
    return (
        *(c.confirmation_id, c.task_id, c.line_id, c.sku, c.location, c.quantity),
        *(c.closes_item, c.picker_id, c.source, c.accepted, c.code, json.dumps(c.receipt)),
    )
