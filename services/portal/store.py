"""The portal's SQL (asyncpg only): the tracking and stock projections."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.portal.domain import Change, OrderView, StockPosition, TimelineEntry
from services.portal.domain.tracking import timeline_order

ORDER_CHANNEL = "portal_order_changed"

Reader: TypeAlias = asyncpg.Connection | asyncpg.Pool
JSON_FIELDS = (
    "lines",
    "reasons",
    "reservations",
    "backordered",
    "picking",
    "packages",
    "shipments",
)
VIEW_COLUMNS = (
    "order_id, version, status, updated_at, customer_id, storefront_id, storefront_reference, "
    "currency, total_minor, placed_at, lines, reasons, payment_status, stock_status, "
    "reservations, backordered, expected_ship_date, picking, packages, shipments, "
    "estimated_delivery"
)


_VIEW_COLUMN_LIST = VIEW_COLUMNS.split(", ")
# the view, and one change notification per order (delivered at commit)
UPSERT_VIEW = f"""WITH view AS (
        INSERT INTO orders ({VIEW_COLUMNS})
        VALUES ({
    ", ".join(
        f"${i}::jsonb" if c in JSON_FIELDS else f"${i}"
        for i, c in enumerate(_VIEW_COLUMN_LIST, start=1)
    )
})
        ON CONFLICT (order_id) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in _VIEW_COLUMN_LIST[1:])
}
        RETURNING order_id)
    SELECT pg_notify('{ORDER_CHANNEL}', order_id) FROM view"""


async def lock_views(conn: asyncpg.Connection, order_ids: Iterable[str]) -> dict[str, OrderView]:
    """Current views of those orders that have one, row-locked for the rest of the
    transaction (in order_id order, so two writers cannot deadlock on them)."""
    records = await conn.fetch(
        f"""SELECT {VIEW_COLUMNS} FROM orders WHERE order_id = ANY($1::text[])
            ORDER BY order_id FOR UPDATE""",
        sorted(order_ids),
    )
    return {r["order_id"]: _view(r) for r in records}


async def get_view(conn: Reader, order_id: str) -> OrderView | None:
    record = await conn.fetchrow(f"SELECT {VIEW_COLUMNS} FROM orders WHERE order_id = $1", order_id)
    return _view(record) if record else None


async def customer_orders(
    conn: Reader, customer_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[OrderView]:
    """Newest first; ``after`` is the (placed_at, order_id) of the previous page's last."""
    if after is None:
        records = await conn.fetch(
            f"""SELECT {VIEW_COLUMNS} FROM orders WHERE customer_id = $1
                ORDER BY placed_at DESC, order_id DESC LIMIT $2""",
            customer_id,
            limit,
        )
    else:
        records = await conn.fetch(
            f"""SELECT {VIEW_COLUMNS} FROM orders WHERE customer_id = $1
                  AND (placed_at, order_id) < ($2, $3)
                ORDER BY placed_at DESC, order_id DESC LIMIT $4""",
            customer_id,
            after[0],
            after[1],
            limit,
        )
    return [_view(r) for r in records]


async def get_timeline(conn: Reader, order_id: str) -> list[TimelineEntry]:
    records = await conn.fetch(
        """SELECT event_id, event_type, occurred_at, status, version, reasons, detail
           FROM order_timeline WHERE order_id = $1
           ORDER BY occurred_at, version NULLS LAST, event_id""",
        order_id,
    )
    return timeline_order(
        [
            TimelineEntry(
                event_id=r["event_id"],
                event_type=r["event_type"],
                occurred_at=r["occurred_at"],
                status=r["status"],
                version=r["version"],
                reasons=json.loads(r["reasons"]),
                detail=json.loads(r["detail"]),
            )
            for r in records
        ]
    )


async def save(conn: asyncpg.Connection, changes: Sequence[Change]) -> None:
    """Each order's newest view, every timeline step and one change notification per
    order, in two pipelined round trips whatever the number of changes."""
    if not changes:
        return
    newest = {view.order_id: view for view, _ in changes}  # later changes win
    await conn.executemany(UPSERT_VIEW, [_view_row(view) for view in newest.values()])
    await conn.executemany(
        """INSERT INTO order_timeline (order_id, event_id, event_type, occurred_at,
                                       status, version, reasons, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)
           ON CONFLICT DO NOTHING""",
        [
            (
                view.order_id,
                entry.event_id,
                entry.event_type,
                entry.occurred_at,
                entry.status,
                entry.version,
                json.dumps(entry.reasons),
                json.dumps(entry.detail),
            )
            for view, entry in changes
        ],
    )


def _view_row(view: OrderView) -> list[Any]:
    # getattr, not asdict: asdict deep-copies every nested list, a quarter of the
    # portal's CPU under load
    return [
        json.dumps(getattr(view, c)) if c in JSON_FIELDS else getattr(view, c)
        for c in _VIEW_COLUMN_LIST
    ]


async def lock_positions(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StockPosition]:
    """Current positions for those (sku, warehouse) that have one, row-locked in key
    order."""
    ordered = sorted(keys)
    records = await conn.fetch(
        """SELECT s.* FROM stock_levels s
             JOIN unnest($1::text[], $2::text[]) AS k(sku, warehouse_id) USING (sku, warehouse_id)
           ORDER BY s.sku, s.warehouse_id FOR UPDATE OF s""",
        [sku for sku, _ in ordered],
        [warehouse for _, warehouse in ordered],
    )
    return {(r["sku"], r["warehouse_id"]): StockPosition(**dict(r)) for r in records}


POSITION_COLUMNS = [f.name for f in fields(StockPosition)]
UPSERT_POSITION = f"""INSERT INTO stock_levels ({", ".join(POSITION_COLUMNS)})
    VALUES ({", ".join(f"${i}" for i in range(1, len(POSITION_COLUMNS) + 1))})
    ON CONFLICT (sku, warehouse_id) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in POSITION_COLUMNS[2:])
}"""


async def save_positions(conn: asyncpg.Connection, positions: Sequence[StockPosition]) -> None:
    if positions:
        await conn.executemany(
            UPSERT_POSITION, [[getattr(p, c) for c in POSITION_COLUMNS] for p in positions]
        )


async def positions_for_sku(conn: Reader, sku: str) -> list[StockPosition]:
    records = await conn.fetch("SELECT * FROM stock_levels WHERE sku = $1", sku)
    return [StockPosition(**dict(r)) for r in records]


async def positions_in_warehouse(
    conn: Reader, warehouse_id: str, *, limit: int, after_sku: str | None
) -> list[StockPosition]:
    records = await conn.fetch(
        """SELECT * FROM stock_levels WHERE warehouse_id = $1 AND sku > $2
           ORDER BY sku LIMIT $3""",
        warehouse_id,
        after_sku or "",
        limit,
    )
    return [StockPosition(**dict(r)) for r in records]


def _view(r: asyncpg.Record) -> OrderView:
    data = dict(r)
    for name in JSON_FIELDS:
        data[name] = json.loads(data[name])
    return OrderView(**data)
