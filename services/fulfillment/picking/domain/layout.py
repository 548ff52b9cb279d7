"""A warehouse's floor: zones, the bin of each SKU, and how its orders are picked. Pure.

The shipped layout is ``seed/layout.json``; settings may override every warehouse's
strategy and parameters (see ``settings.py``). A SKU without a bin is not an error: it is
picked from the warehouse's *unslotted* location, so an order never waits on slotting.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.schemas.events.fulfillment import PickingStrategy

UNSLOTTED_ZONE = "UNSLOTTED"
UNSLOTTED_LOCATION = "UNSLOTTED"

Code = Annotated[str, Field(min_length=1, max_length=64)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bin(_Frozen):
    """Where a SKU lives: a location code (zone-aisle-shelf) in a zone."""

    location: Code
    zone: Code


class Zone(_Frozen):
    zone: Code
    name: str = ""


class BatchParams(_Frozen):
    """A trip collects up to ``max_orders`` orders; it leaves full or after ``max_wait_s``."""

    max_orders: int = Field(default=8, ge=1)
    max_wait_s: float = Field(default=30.0, ge=0)


class WaveParams(_Frozen):
    """Waves close at the end of each ``window_s`` window (aligned to the clock), or
    earlier when ``max_orders`` orders joined (0: by time only)."""

    window_s: float = Field(default=60.0, gt=0)
    max_orders: int = Field(default=0, ge=0)


class WarehouseLayout(_Frozen):
    warehouse_id: Code
    name: str = ""
    strategy: PickingStrategy = "single_order"
    zones: tuple[Zone, ...] = ()
    bins: dict[str, Bin] = Field(default_factory=dict, description="SKU → bin")
    unslotted: Bin = Bin(location=UNSLOTTED_LOCATION, zone=UNSLOTTED_ZONE)
    batch: BatchParams = BatchParams()
    wave: WaveParams = WaveParams()

    @model_validator(mode="after")
    def _bins_are_in_known_zones(self) -> WarehouseLayout:
        known = {z.zone for z in self.zones}
        if known:
            stray = sorted({b.zone for b in self.bins.values()} - known)
            if stray:
                raise ValueError(f"{self.warehouse_id}: bins in undeclared zones {stray}")
        return self

    def locate(self, sku: str) -> Bin | None:
        """The SKU's bin, or None: then it is picked from :attr:`unslotted`."""
        return self.bins.get(sku)

    def bin_for(self, sku: str) -> Bin:
        return self.bins.get(sku, self.unslotted)


class Layout(_Frozen):
    """Every warehouse's layout. A warehouse not described here is picked single-order,
    everything from its unslotted location (``fallback``)."""

    description: str = ""
    warehouses: dict[str, WarehouseLayout] = Field(default_factory=dict)
    fallback_strategy: PickingStrategy = "single_order"

    @field_validator("warehouses", mode="before")
    @classmethod
    def _index_a_list(cls, value: object) -> object:
        """The file lists warehouses; the model indexes them by id."""
        if not isinstance(value, list):
            return value
        ids = [w["warehouse_id"] if isinstance(w, dict) else w.warehouse_id for w in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a warehouse is listed twice: {sorted(ids)}")
        return dict(zip(ids, value, strict=True))

    @model_validator(mode="after")
    def _keys_match_ids(self) -> Layout:
        for key, warehouse in self.warehouses.items():
            if key != warehouse.warehouse_id:
                raise ValueError(f"warehouse {key!r} has warehouse_id {warehouse.warehouse_id!r}")
        return self

    def warehouse(self, warehouse_id: str) -> WarehouseLayout:
        found = self.warehouses.get(warehouse_id)
        if found is not None:
            return found
        return WarehouseLayout(warehouse_id=warehouse_id, strategy=self.fallback_strategy)

    def knows(self, warehouse_id: str) -> bool:
        return warehouse_id in self.warehouses
