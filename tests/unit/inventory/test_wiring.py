"""The inventory service's handlers arrive on topics it consumes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.inventory.app import definition
from shared.runtime.consumer import Batched


def test_every_handler_is_reachable() -> None:
    service = definition()
    assert service.name == "inventory" and service.schema == "inventory_service"
    assert set(service.handlers) == {
        "order.placed.v1",
        "order.cancelled.v1",
        "shipment.dispatched.v1",
        "picking.short_picked.v1",
        "inventory.receive_stock.v1",
        "returns.restocked.v1",
    }
    assert service.unreachable_handlers() == []
    assert (service.migrations / "0001_stock_and_reservations.sql").is_file()
    assert (service.migrations / "0002_short_picks.sql").is_file()
    assert len(service.background) == 1  # start-up seeding


def test_placements_and_shipments_are_applied_in_runs() -> None:
    handlers = definition().handlers
    batched = {type_ for type_, handler in handlers.items() if isinstance(handler, Batched)}
    assert batched == {"order.placed.v1", "shipment.dispatched.v1"}


async def test_a_run_waits_for_the_seed_like_a_single_record() -> None:
    handlers = definition().handlers  # its seeding job never ran
    placed, cancelled = handlers["order.placed.v1"], handlers["order.cancelled.v1"]
    assert isinstance(placed, Batched) and not isinstance(cancelled, Batched)
    nothing: Any = None  # never reached: both wait before they touch the unit of work
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(placed.apply(nothing, []), timeout=0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cancelled(nothing, nothing, nothing), timeout=0.05)
