"""``CONVEYOR_PICKING_*`` settings: the layout file, strategy overrides, the release job
and the simulated picker.

Overrides apply on top of ``seed/layout.json`` (or ``CONVEYOR_PICKING_LAYOUT``), in
this order: ``STRATEGY`` (every warehouse), then ``STRATEGIES`` (a JSON object
warehouse → strategy), then the batch and wave parameters for every warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.fulfillment.picking.domain import Layout, WarehouseLayout
from shared.schemas.events.fulfillment import PickingStrategy

DEFAULT_LAYOUT = Path(__file__).parent / "seed" / "layout.json"


class PickingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_PICKING_", extra="ignore")

    layout: Path = DEFAULT_LAYOUT
    strategy: PickingStrategy | None = None
    strategies: dict[str, PickingStrategy] = Field(default_factory=dict)
    batch_size: int | None = Field(default=None, ge=1)
    batch_max_wait_s: float | None = Field(default=None, ge=0)
    wave_window_s: float | None = Field(default=None, gt=0)
    wave_size: int | None = Field(default=None, ge=0)

    # the release job: at most this long between looks for due trips (it also wakes when
    # a trip opens and sleeps no longer than until the next deadline)
    release_poll_s: float = Field(default=1.0, gt=0)

    # the simulated picker: on by default, so `make run` and the tests run unattended
    simulator: bool = True
    simulated_pick_s: float = Field(default=0.1, ge=0, description="how long a task takes")
    simulated_short_probability: float = Field(default=0.0, ge=0, le=1)
    simulated_seed: int = 0
    simulated_picker_id: str = "simulated-picker"
    simulator_batch_size: int = Field(default=200, ge=1)
    simulator_poll_s: float = Field(default=0.5, gt=0)

    def load_layout(self) -> Layout:
        layout = Layout.model_validate_json(self.layout.read_bytes())
        return self.apply_overrides(layout)

    def apply_overrides(self, layout: Layout) -> Layout:
        named = set(layout.warehouses) | set(self.strategies)
        warehouses = {w: self._override(layout.warehouse(w)) for w in sorted(named)}
        fallback = self.strategy or layout.fallback_strategy
        return layout.model_copy(update={"warehouses": warehouses, "fallback_strategy": fallback})

    def _override(self, floor: WarehouseLayout) -> WarehouseLayout:
        strategy = self.strategies.get(floor.warehouse_id, self.strategy or floor.strategy)
        batch = _with(floor.batch, max_orders=self.batch_size, max_wait_s=self.batch_max_wait_s)
        wave = _with(floor.wave, window_s=self.wave_window_s, max_orders=self.wave_size)
        return floor.model_copy(update={"strategy": strategy, "batch": batch, "wave": wave})


M = TypeVar("M", bound=BaseModel)


def _with(model: M, **values: object) -> M:
    """A copy with the values that are set (None: keep the layout's)."""
    return model.model_copy(update={k: v for k, v in values.items() if v is not None})
