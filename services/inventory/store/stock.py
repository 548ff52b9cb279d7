"""Stock rows (locked in (sku, warehouse_id) order, changed with a version bump) and
expected receipts. The table's CHECKs refuse anything that would oversell."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date

import asyncpg

from services.inventory import domain
from services.inventory.domain import StockKey

_SNAPSHOT = """
    SELECT c.sku, c.warehouse_id, c.on_hand, c.reserved, c.safety_stock, c.version,
           k.backorderable,
           (SELECT min(i.expected_date) FROM incoming_stock i
             WHERE i.sku = c.sku AND i.warehouse_id = c.warehouse_id
               AND i.received < i.quantity) AS next_restock_date
    FROM changed c JOIN skus k USING (sku)
"""


# --- stock rows ---


def _level(r: asyncpg.Record) -> domain.StockLevel:
    return domain.StockLevel(
        r["sku"], r["warehouse_id"], r["on_hand"], r["reserved"], r["safety_stock"]
    )


async def lock_stock_row(
    conn: asyncpg.Connection, sku: str, warehouse_id: str
) -> domain.StockLevel:
    """One stock row, created empty if the SKU was never stocked there, locked."""
    await conn.execute(
        """INSERT INTO stock (sku, warehouse_id, on_hand) VALUES ($1, $2, 0)
           ON CONFLICT (sku, warehouse_id) DO NOTHING""",
        sku,
        warehouse_id,
    )
    row = await conn.fetchrow(
        """SELECT sku, warehouse_id, on_hand, reserved, safety_stock FROM stock
           WHERE sku = $1 AND warehouse_id = $2 FOR UPDATE""",
        sku,
        warehouse_id,
    )
    assert row is not None
    return _level(row)


def _snapshot(r: asyncpg.Record) -> domain.LevelSnapshot:
    return domain.LevelSnapshot(
        level=_level(r),
        version=r["version"],
        backorderable=r["backorderable"],
        next_restock_date=r["next_restock_date"],
    )


async def change_stock(
    conn: asyncpg.Connection, changes: Mapping[StockKey, tuple[int, int]]
) -> list[domain.LevelSnapshot]:
    """Apply (on_hand delta, reserved delta) per row, in lock order; each changed row's
    version goes up by one. The table's CHECKs refuse anything that would oversell."""
    snapshots: list[domain.LevelSnapshot] = []
    for (sku, warehouse_id), (d_on_hand, d_reserved) in sorted(changes.items()):
        if d_on_hand == 0 and d_reserved == 0:
            continue
        row = await conn.fetchrow(
            f"""WITH changed AS (
                    UPDATE stock SET on_hand = on_hand + $3, reserved = reserved + $4,
                                     version = version + 1, updated_at = now()
                    WHERE sku = $1 AND warehouse_id = $2
                    RETURNING sku, warehouse_id, on_hand, reserved, safety_stock, version)
                {_SNAPSHOT}""",
            sku,
            warehouse_id,
            d_on_hand,
            d_reserved,
        )
        if row is None:
            raise LookupError(f"no stock row for {sku} in {warehouse_id}")
        snapshots.append(_snapshot(row))
    return snapshots


async def lock_levels_of_skus(
    conn: asyncpg.Connection, skus: Iterable[str]
) -> list[domain.LevelSnapshot]:
    """Every warehouse's row of these SKUs, locked in (sku, warehouse_id) order, with
    what its level event carries: from here to the end of the transaction nobody else
    can reserve, release or receive them."""
    rows = await conn.fetch(
        f"""WITH changed AS MATERIALIZED (
                SELECT sku, warehouse_id, on_hand, reserved, safety_stock, version FROM stock
                WHERE sku = ANY($1::text[]) ORDER BY sku, warehouse_id FOR UPDATE)
            {_SNAPSHOT} ORDER BY c.sku, c.warehouse_id""",
        sorted(set(skus)),
    )
    return [_snapshot(r) for r in rows]


async def lock_levels(
    conn: asyncpg.Connection, keys: Iterable[StockKey]
) -> list[domain.LevelSnapshot]:
    """These rows (those that exist), locked in (sku, warehouse_id) order, with what
    their level events carry."""
    wanted = sorted(set(keys))
    rows = await conn.fetch(
        f"""WITH changed AS MATERIALIZED (
                SELECT s.sku, s.warehouse_id, s.on_hand, s.reserved, s.safety_stock, s.version
                FROM stock s JOIN unnest($1::text[], $2::text[]) AS k (sku, warehouse_id)
                  USING (sku, warehouse_id)
                ORDER BY s.sku, s.warehouse_id FOR UPDATE OF s)
            {_SNAPSHOT} ORDER BY c.sku, c.warehouse_id""",
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return [_snapshot(r) for r in rows]


async def move_stock(
    conn: asyncpg.Connection, moves: Mapping[StockKey, tuple[int, int, int]]
) -> None:
    """Apply (on_hand, reserved, version) deltas to rows this transaction holds locked
    (``domain.StockBook.net_changes``), in one pipelined round trip. The table's CHECKs
    still refuse anything that would oversell."""
    if not moves:
        return
    await conn.executemany(
        """UPDATE stock SET on_hand = on_hand + $3, reserved = reserved + $4,
                            version = version + $5, updated_at = now()
           WHERE sku = $1 AND warehouse_id = $2""",
        [
            (sku, warehouse_id, d_on_hand, d_reserved, d_version)
            for (sku, warehouse_id), (d_on_hand, d_reserved, d_version) in sorted(moves.items())
        ],
    )


async def snapshots(
    conn: asyncpg.Connection, keys: Iterable[StockKey]
) -> list[domain.LevelSnapshot]:
    """Current rows (no change, no version bump), e.g. after the seed loader set them."""
    wanted = sorted(set(keys))
    rows = await conn.fetch(
        f"""WITH changed AS (
                SELECT s.sku, s.warehouse_id, s.on_hand, s.reserved, s.safety_stock, s.version
                FROM stock s JOIN unnest($1::text[], $2::text[]) AS k (sku, warehouse_id)
                  USING (sku, warehouse_id))
            {_SNAPSHOT} ORDER BY c.sku, c.warehouse_id""",
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return [_snapshot(r) for r in rows]


async def bump_versions(
    conn: asyncpg.Connection, keys: Iterable[StockKey]
) -> list[domain.LevelSnapshot]:
    """A new version for rows whose level changed outside ``change_stock`` (the seed)."""
    result: list[domain.LevelSnapshot] = []
    for sku, warehouse_id in sorted(set(keys)):
        row = await conn.fetchrow(
            f"""WITH changed AS (
                    UPDATE stock SET version = version + 1, updated_at = now()
                    WHERE sku = $1 AND warehouse_id = $2
                    RETURNING sku, warehouse_id, on_hand, reserved, safety_stock, version)
                {_SNAPSHOT}""",
            sku,
            warehouse_id,
        )
        assert row is not None
        result.append(_snapshot(row))
    return result


async def set_stock(
    conn: asyncpg.Connection, sku: str, warehouse_id: str, on_hand: int, safety_stock: int
) -> None:
    """Set a row's on-hand and safety stock (reservations are kept); locks the row."""
    await conn.execute(
        """INSERT INTO stock (sku, warehouse_id, on_hand, safety_stock) VALUES ($1, $2, $3, $4)
           ON CONFLICT (sku, warehouse_id) DO UPDATE
           SET on_hand = EXCLUDED.on_hand, safety_stock = EXCLUDED.safety_stock""",
        sku,
        warehouse_id,
        on_hand,
        safety_stock,
    )


# --- incoming stock ---


async def incoming(conn: asyncpg.Connection, skus: Collection[str]) -> list[domain.Incoming]:
    if not skus:
        return []
    rows = await conn.fetch(
        """SELECT sku, warehouse_id, quantity - received AS outstanding, expected_date
           FROM incoming_stock WHERE sku = ANY($1::text[]) AND received < quantity""",
        list(skus),
    )
    return [
        domain.Incoming(r["sku"], r["warehouse_id"], r["outstanding"], r["expected_date"])
        for r in rows
    ]


async def consume_incoming(
    conn: asyncpg.Connection, sku: str, warehouse_id: str, quantity: int, reference: str
) -> None:
    """A goods receipt fulfils expected receipts of that SKU and warehouse: the one with
    the same reference first, then the earliest expected."""
    rows = await conn.fetch(
        """SELECT reference, quantity - received AS outstanding FROM incoming_stock
           WHERE sku = $1 AND warehouse_id = $2 AND received < quantity
           ORDER BY reference = $3 DESC, expected_date, reference FOR UPDATE""",
        sku,
        warehouse_id,
        reference,
    )
    for row in rows:
        if quantity <= 0:
            break
        take = min(quantity, row["outstanding"])
        await conn.execute(
            """UPDATE incoming_stock SET received = received + $4
               WHERE reference = $1 AND sku = $2 AND warehouse_id = $3""",
            row["reference"],
            sku,
            warehouse_id,
            take,
        )
        quantity -= take


async def upsert_incoming(conn: asyncpg.Connection, reference: str, item: domain.Incoming) -> None:
    await conn.execute(
        """INSERT INTO incoming_stock (reference, sku, warehouse_id, quantity, expected_date)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (reference, sku, warehouse_id) DO UPDATE
           SET quantity = GREATEST(EXCLUDED.quantity, incoming_stock.received),
               expected_date = EXCLUDED.expected_date""",
        reference,
        item.sku,
        item.warehouse_id,
        item.quantity,
        item.expected_date,
    )


async def stock_state(
    conn: asyncpg.Connection, keys: Iterable[StockKey]
) -> dict[StockKey, tuple[int, int, int, bool, date | None]]:
    """What a level event shows, per row: to tell whether the seed changed it."""
    return {
        s.level.key: (
            s.level.on_hand,
            s.level.reserved,
            s.level.safety_stock,
            s.backorderable,
            s.next_restock_date,
        )
        for s in await snapshots(conn, keys)
    }


async def stock_keys(conn: asyncpg.Connection, skus: Iterable[str]) -> set[StockKey]:
    rows = await conn.fetch(
        "SELECT sku, warehouse_id FROM stock WHERE sku = ANY($1::text[])", list(skus)
    )
    return {(r["sku"], r["warehouse_id"]) for r in rows}
