"""A small layout for the rule tests: one warehouse per strategy, two zones each."""

from __future__ import annotations

from services.fulfillment.picking.domain import (
    BatchParams,
    Bin,
    Layout,
    WarehouseLayout,
    WaveParams,
    Zone,
)
from shared.schemas.events.fulfillment import PickingStrategy

BINS = {
    "TEE": Bin(location="A-01-01", zone="A"),
    "HOODIE": Bin(location="A-02-01", zone="A"),
    "MUG": Bin(location="H-01-01", zone="H"),
}


def floor(warehouse_id: str, strategy: PickingStrategy) -> WarehouseLayout:
    return WarehouseLayout(
        warehouse_id=warehouse_id,
        strategy=strategy,
        zones=(Zone(zone="A"), Zone(zone="H")),
        bins=BINS,
        unslotted=Bin(location=f"{warehouse_id}-UNSLOTTED", zone="UNSLOTTED"),
        batch=BatchParams(max_orders=3, max_wait_s=30),
        wave=WaveParams(window_s=60, max_orders=0),
    )


LAYOUT = Layout(
    warehouses={
        "SINGLE": floor("SINGLE", "single_order"),
        "ZONED": floor("ZONED", "zone"),
        "BATCH": floor("BATCH", "batch"),
        "WAVE": floor("WAVE", "wave"),
    }
)
