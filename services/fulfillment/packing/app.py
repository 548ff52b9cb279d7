"""Wiring of the packing service: settings, the catalogs, its handlers and migrations.

No HTTP API of its own (health, readiness and metrics come from the runtime).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.fulfillment.packing import catalog, domain, handlers
from shared.runtime.logging import get_logger
from shared.runtime.service import ServiceContext, ServiceDefinition

log = get_logger(__name__)

Millimetres = Annotated[int, Field(gt=0)]


class PackingSettings(BaseSettings):
    """``CONVEYOR_PACKING_*``: the catalogs, how full a box may get, the station's name."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_PACKING_", extra="ignore")

    boxes_path: Path = catalog.DEFAULT_BOXES
    products_path: Path = catalog.DEFAULT_PRODUCTS
    # share of a box's inner volume that several items may take (the rest is gaps)
    fill_factor: float = Field(0.8, gt=0, le=1)
    # walls of a box whose catalog entry gives none: outer = inner + 2 x wall per side
    wall_mm: int = Field(3, ge=0)
    # a SKU missing from the product catalog is packed as this (and logged)
    default_length_mm: Millimetres = 300
    default_width_mm: Millimetres = 200
    default_height_mm: Millimetres = 100
    default_weight_grams: Annotated[int, Field(gt=0)] = 500
    packer_id: str = Field("sim-packer", min_length=1)  # the simulated packing station

    def default_product(self) -> domain.Product:
        size = domain.Size(self.default_length_mm, self.default_width_mm, self.default_height_mm)
        return domain.Product("(unknown SKU)", size, self.default_weight_grams)

    def load_catalog(self) -> domain.Catalog:
        return catalog.load_catalog(
            boxes_path=self.boxes_path,
            products_path=self.products_path,
            default_product=self.default_product(),
            wall_mm=self.wall_mm,
        )


def definition(settings: PackingSettings | None = None) -> ServiceDefinition:
    """Reads and validates the catalogs now: a broken file stops the start, loudly."""
    settings = settings or PackingSettings()
    station = handlers.PackingHandlers(
        settings.load_catalog(), fill_factor=settings.fill_factor, packer_id=settings.packer_id
    )

    async def announce_catalog(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        """Say which catalogs are in use (logging is configured only once running)."""
        log.info(
            "packing.catalog_loaded",
            boxes=[b.code for b in station.catalog.boxes],
            products=len(station.catalog.products),
            boxes_path=str(settings.boxes_path),
            products_path=str(settings.products_path),
            fill_factor=settings.fill_factor,
        )
        await stopping.wait()

    return ServiceDefinition(
        name="packing",
        migrations=Path(__file__).parent / "migrations",
        handlers=station.handlers(),
        background=[announce_catalog],
    )
