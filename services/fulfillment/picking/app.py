"""Wiring of the picking service: handlers, the handheld API, the background jobs.

The layout and the settings are read when the service is built, never at import time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.fulfillment.picking import api, handlers, jobs
from services.fulfillment.picking.domain import Layout
from services.fulfillment.picking.settings import PickingSettings
from shared.runtime.logging import get_logger
from shared.runtime.service import ServiceContext, ServiceDefinition

log = get_logger(__name__)

NAME = "picking"


def _announce(settings: PickingSettings, layout: Layout) -> jobs.Job:
    async def job(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        log.info(
            "picking.layout",
            layout=str(settings.layout),
            strategies={w: f.strategy for w, f in layout.warehouses.items()},
            other_warehouses=layout.fallback_strategy,
            simulator=settings.simulator,
        )
        await stopping.wait()

    return job


def definition(settings: PickingSettings | None = None) -> ServiceDefinition:
    settings = settings or PickingSettings()
    layout = settings.load_layout()
    wakeups = jobs.Wakeups()
    background = [
        _announce(settings, layout),
        wakeups.job(),
        jobs.release_due_trips(settings, wakeups),
    ]
    if settings.simulator:
        background.append(jobs.simulated_picker(settings, wakeups))
    return ServiceDefinition(
        name=NAME,
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.build(layout),
        router=api.router,
        background=background,
    )
