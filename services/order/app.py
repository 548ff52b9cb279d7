"""Wiring of the order service: what it consumes, its handlers, migrations and API."""

from __future__ import annotations

from pathlib import Path

from services.order import api, handlers
from shared.runtime.service import ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="order",
        migrations=Path(__file__).parent / "migrations",
        handlers=handlers.HANDLERS,
        router=api.router,
    )
