"""Seed data: warehouses, region order, SKUs, stock levels and expected receipts.

``load_seed(conn, path)`` upserts a seed file (JSON, see ``seed/catalog.json``) into the
inventory schema in one transaction: it never deletes anything (except that a given
``region_order`` replaces the configured one), sets ``on_hand`` and ``safety_stock`` of
the rows it names and keeps their reservations, so loading the same file twice changes
nothing. Every stock row whose level changed gets a new version and a
``stock.level_changed.v1`` in the outbox, published by the service's relay.

    python -m services.inventory.seed [PATH]     # DATABASE_URL; default: seed/catalog.json

migrates the schema first, so it works before the service ever ran. The service loads
the default file at start-up when its catalog is empty (``seed_if_empty``).
"""

from __future__ import annotations

import argparse
import asyncio
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.inventory import domain, store
from shared.runtime.db import migrate, wait_for_database
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork

DEFAULT_SEED = Path(__file__).parent / "seed" / "catalog.json"
MIGRATIONS = Path(__file__).parent / "migrations"
SEED_LOCK = zlib.crc32(f"conveyor-seed:{store.SCHEMA}".encode())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


REGION = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"  # GB, US-NJ (ISO 3166-1 alpha-2 / 3166-2)
Region = Annotated[str, Field(pattern=REGION)]
ShipToKey = Annotated[str, Field(pattern=r"^([A-Z]{2}(-[A-Z0-9]{1,3})?|\*)$")]


class SeedWarehouse(_Strict):
    warehouse_id: str = Field(min_length=1)
    name: str
    region: Region


class SeedSku(_Strict):
    sku: str = Field(min_length=1)
    name: str = ""
    backorderable: bool = False
    discontinued: bool = False


class SeedStock(_Strict):
    sku: str
    warehouse_id: str
    on_hand: int = Field(ge=0)
    safety_stock: int = Field(default=0, ge=0)


class SeedIncoming(_Strict):
    """An expected receipt: give ``expected_date`` or ``expected_in_days`` (from load)."""

    reference: str = Field(min_length=1)
    sku: str
    warehouse_id: str
    quantity: int = Field(gt=0)
    expected_date: date | None = None
    expected_in_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_date(self) -> SeedIncoming:
        if (self.expected_date is None) == (self.expected_in_days is None):
            raise ValueError("give exactly one of expected_date and expected_in_days")
        return self

    def date_from(self, today: date) -> date:
        if self.expected_date is not None:
            return self.expected_date
        assert self.expected_in_days is not None
        return today + timedelta(days=self.expected_in_days)


class Seed(_Strict):
    description: str = ""
    warehouses: list[SeedWarehouse] = []
    region_order: dict[ShipToKey, list[Region]] | None = None
    skus: list[SeedSku] = []
    stock: list[SeedStock] = []
    incoming: list[SeedIncoming] = []


@dataclass(frozen=True)
class SeedResult:
    warehouses: int
    skus: int
    stock_rows: int
    incoming: int
    levels_changed: int


def read_seed(path: Path) -> Seed:
    return Seed.model_validate_json(path.read_bytes())


async def load_seed(conn: asyncpg.Connection, path: Path | str = DEFAULT_SEED) -> SeedResult:
    """Upsert the seed file in one transaction (idempotent); see the module docstring."""
    seed = read_seed(Path(path))
    now = datetime.now(UTC)
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path TO "{store.SCHEMA}"')
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK)
        for w in seed.warehouses:
            await store.upsert_warehouse(conn, domain.Warehouse(w.warehouse_id, w.name, w.region))
        if seed.region_order is not None:
            await store.replace_region_order(conn, seed.region_order)
        for s in seed.skus:
            await store.upsert_sku(conn, domain.Sku(s.sku, s.backorderable, s.discontinued), s.name)

        skus = {s.sku for s in seed.skus} | {s.sku for s in seed.stock}
        skus |= {i.sku for i in seed.incoming}
        levels = {(s.sku, s.warehouse_id): s for s in seed.stock}
        keys = set(levels) | {(i.sku, i.warehouse_id) for i in seed.incoming}
        before = await store.stock_state(conn, await store.stock_keys(conn, skus))
        for sku, warehouse_id in sorted(keys):  # lock order
            if (sku, warehouse_id) in levels:
                row = levels[(sku, warehouse_id)]
                await store.set_stock(conn, sku, warehouse_id, row.on_hand, row.safety_stock)
            else:  # a row to show the expected receipt on
                await store.lock_stock_row(conn, sku, warehouse_id)
        for i in seed.incoming:
            item = domain.Incoming(i.sku, i.warehouse_id, i.quantity, i.date_from(now.date()))
            await store.upsert_incoming(conn, i.reference, item)
        after = await store.stock_state(conn, await store.stock_keys(conn, skus))

        new = [key for key in after if key not in before]
        changed = [key for key in after if key in before and before[key] != after[key]]
        snapshots = await store.snapshots(conn, new) + await store.bump_versions(conn, changed)
        uow = UnitOfWork(conn=conn, service=store.SERVICE, schema=store.SCHEMA)
        for snapshot in snapshots:
            await uow.emit(domain.level_changed(snapshot, now=now))
    return SeedResult(
        warehouses=len(seed.warehouses),
        skus=len(seed.skus),
        stock_rows=len(seed.stock),
        incoming=len(seed.incoming),
        levels_changed=len(snapshots),
    )


async def seed_if_empty(conn: asyncpg.Connection, path: Path | str = DEFAULT_SEED) -> bool:
    """Load the seed if there are neither SKUs nor warehouses (a fresh database). Safe
    when several instances start at once: the first loads, the others find it loaded."""
    async with conn.transaction():
        await conn.execute(f'SET LOCAL search_path TO "{store.SCHEMA}"')
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEED_LOCK)
        if not await store.catalog_is_empty(conn):
            return False
        await load_seed(conn, path)
        return True


async def seed_database(database_url: str, path: Path | str = DEFAULT_SEED) -> SeedResult:
    """Migrate the inventory schema (as the service would), then load the seed."""
    await wait_for_database(database_url)
    await migrate(database_url, store.SCHEMA, MIGRATIONS)
    conn = await asyncpg.connect(database_url)
    try:
        return await load_seed(conn, path)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.inventory.seed",
        description="Upsert inventory seed data (idempotent) into DATABASE_URL.",
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_SEED, help="seed JSON file")
    args = parser.parse_args(argv)
    settings = Settings(service=store.SERVICE)
    result = asyncio.run(seed_database(settings.database_url, args.path))
    print(
        f"seeded {args.path}: {result.warehouses} warehouses, {result.skus} SKUs, "
        f"{result.stock_rows} stock rows, {result.incoming} expected receipts; "
        f"{result.levels_changed} stock levels changed"
    )


if __name__ == "__main__":
    main()
