"""The whole lifecycle as real processes — order, payment, inventory, risk, picking,
packing, shipping and the portal — on one broker and one database: shared by the
lifecycle tests and the benchmark."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from services.inventory.seed import DEFAULT_SEED, seed_database
from shared.runtime.storefront import DEMO_PRODUCTS, order_body
from tests.integration.harness import ServiceProcess, Stack

STAGES = ("fulfillment.picking", "fulfillment.packing", "fulfillment.shipping")
SERVICES = ("order", "payment", "inventory", "risk", "portal", *STAGES)
TERMINAL = {"completed", "cancelled", "rejected"}
# simulated warehouse staff and carrier at full speed: the pipeline, not the clock, is timed
AT_FULL_SPEED: dict[str, dict[str, str]] = {
    "fulfillment.picking": {"picking_simulated_pick_s": "0"},
    "fulfillment.shipping": {"shipping_simulator_step_seconds": "0"},
}


def ample_seed(directory: Path, units: int) -> Path:
    """The demo catalog with ``units`` of every simulated product in every warehouse, so
    a long run tests the pipeline rather than running out of stock."""
    seed = json.loads(DEFAULT_SEED.read_text())
    skus = {p.sku for p in DEMO_PRODUCTS}
    seed["stock"] = [row for row in seed["stock"] if row["sku"] not in skus] + [
        {"sku": sku, "warehouse_id": w["warehouse_id"], "on_hand": units}
        for sku in sorted(skus)
        for w in seed["warehouses"]
    ]
    path = directory / "ample-seed.json"
    path.write_text(json.dumps(seed))
    return path


async def start_pipeline(
    stack: Stack, seed: Path, overrides: dict[str, dict[str, str]] | None = None
) -> dict[str, ServiceProcess]:
    await seed_database(stack.database_url, seed)
    settings = {name: {**AT_FULL_SPEED.get(name, {}), **(overrides or {}).get(name, {})}
                for name in SERVICES}  # fmt: skip
    started = await asyncio.gather(*(stack.start(name, **settings[name]) for name in SERVICES))
    return dict(zip(SERVICES, started, strict=True))


def orders(count: int, run_id: str, seed: int = 1) -> list[dict[str, Any]]:
    """Simulated storefront orders, each from its own customer (a velocity rule would
    otherwise hold repeat buyers for review, which is not what these runs measure)."""
    rng = random.Random(seed)
    bodies = []
    for n in range(count):
        body = order_body(n, rng, run_id=run_id)
        customer = f"{run_id}-cust-{n}"
        body["customer"] = {**body["customer"], "customer_id": customer}
        bodies.append(body)
    return bodies


async def statuses(stack: Stack) -> dict[str, int]:
    rows = await stack.query("SELECT status, count(*) AS n FROM order_service.orders GROUP BY 1")
    return {r["status"]: r["n"] for r in rows}
