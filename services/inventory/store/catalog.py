"""Catalog, warehouses and the region order: read by handlers, written by the seed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import asyncpg

from services.inventory import domain

SERVICE = "inventory"
SCHEMA = f"{SERVICE}_service"


# --- catalog and network ---


async def load_network(conn: asyncpg.Connection) -> domain.Network:
    warehouses = [
        domain.Warehouse(r["warehouse_id"], r["name"], r["region"])
        for r in await conn.fetch("SELECT warehouse_id, name, region FROM warehouses")
    ]
    order: dict[str, list[str]] = {}
    for r in await conn.fetch(
        "SELECT ship_to, region FROM region_order ORDER BY ship_to, position"
    ):
        order.setdefault(r["ship_to"], []).append(r["region"])
    return domain.Network(warehouses, order)


async def load_skus(conn: asyncpg.Connection, skus: Iterable[str]) -> dict[str, domain.Sku]:
    rows = await conn.fetch(
        "SELECT sku, backorderable, discontinued FROM skus WHERE sku = ANY($1::text[])",
        list(skus),
    )
    return {r["sku"]: domain.Sku(r["sku"], r["backorderable"], r["discontinued"]) for r in rows}


async def known(conn: asyncpg.Connection, sku: str, warehouse_id: str) -> tuple[bool, bool]:
    """(the SKU is in the catalog, the warehouse exists)."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM skus WHERE sku = $1) AS sku,
                  EXISTS (SELECT 1 FROM warehouses WHERE warehouse_id = $2) AS warehouse""",
        sku,
        warehouse_id,
    )
    assert row is not None
    return row["sku"], row["warehouse"]


async def catalog_is_empty(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT NOT EXISTS (SELECT 1 FROM skus) AND NOT EXISTS (SELECT 1 FROM warehouses)"
        )
    )


# --- seed data (services/inventory/seed.py) ---


async def upsert_warehouse(conn: asyncpg.Connection, warehouse: domain.Warehouse) -> None:
    await conn.execute(
        """INSERT INTO warehouses (warehouse_id, name, region) VALUES ($1, $2, $3)
           ON CONFLICT (warehouse_id)
           DO UPDATE SET name = EXCLUDED.name, region = EXCLUDED.region""",
        warehouse.warehouse_id,
        warehouse.name,
        warehouse.region,
    )


async def replace_region_order(
    conn: asyncpg.Connection, region_order: Mapping[str, Sequence[str]]
) -> None:
    await conn.execute("DELETE FROM region_order")
    await conn.executemany(
        "INSERT INTO region_order (ship_to, position, region) VALUES ($1, $2, $3)",
        [
            (ship_to, position, region)
            for ship_to, regions in region_order.items()
            for position, region in enumerate(regions)
        ],
    )


async def upsert_sku(conn: asyncpg.Connection, sku: domain.Sku, name: str) -> None:
    await conn.execute(
        """INSERT INTO skus (sku, name, backorderable, discontinued) VALUES ($1, $2, $3, $4)
           ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name,
               backorderable = EXCLUDED.backorderable, discontinued = EXCLUDED.discontinued""",
        sku.sku,
        name,
        sku.backorderable,
        sku.discontinued,
    )
