"""The shipped layout, settings overrides, and the service's wiring. No I/O beyond
reading the packaged layout file."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.fulfillment.picking.app import definition
from services.fulfillment.picking.domain import Bin, Layout, WarehouseLayout, Zone
from services.fulfillment.picking.settings import DEFAULT_LAYOUT, PickingSettings
from services.inventory.seed import DEFAULT_SEED as CATALOG


def test_the_shipped_layout_slots_every_demo_sku_in_every_demo_warehouse() -> None:
    layout = PickingSettings().load_layout()
    catalog = json.loads(CATALOG.read_text())
    skus = {s["sku"] for s in catalog["skus"]}
    warehouses = {w["warehouse_id"] for w in catalog["warehouses"]}
    assert set(layout.warehouses) == warehouses == {"WH-LON", "WH-BER", "WH-NJ"}
    for warehouse_id in warehouses:
        floor = layout.warehouse(warehouse_id)
        assert set(floor.bins) >= skus, warehouse_id
        assert floor.unslotted.zone == "UNSLOTTED"
    assert {w: f.strategy for w, f in layout.warehouses.items()} == {
        "WH-LON": "zone",
        "WH-BER": "batch",
        "WH-NJ": "wave",
    }


def test_settings_override_strategies_and_parameters() -> None:
    settings = PickingSettings(
        strategy="batch",
        strategies={"WH-NJ": "zone", "WH-NEW": "wave"},
        batch_size=2,
        wave_window_s=5,
    )
    layout = settings.load_layout()
    strategies = {w: f.strategy for w, f in layout.warehouses.items()}
    assert strategies == {"WH-LON": "batch", "WH-BER": "batch", "WH-NJ": "zone", "WH-NEW": "wave"}
    assert layout.warehouse("ANYWHERE").strategy == "batch"  # STRATEGY: every warehouse
    assert {f.batch.max_orders for f in layout.warehouses.values()} == {2}
    assert layout.warehouse("WH-BER").batch.max_wait_s == 5  # the layout's, not overridden
    assert layout.warehouse("WH-NJ").wave.window_s == 5
    assert layout.warehouse("WH-LON").bins["MUG-BLUE"].location == "H-04-02"  # bins stay


def test_strategies_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_PICKING_STRATEGIES", '{"WH-LON": "wave"}')
    monkeypatch.setenv("CONVEYOR_PICKING_SIMULATOR", "false")
    settings = PickingSettings()
    assert settings.strategies == {"WH-LON": "wave"} and not settings.simulator
    assert settings.layout == DEFAULT_LAYOUT


def test_a_bin_in_an_undeclared_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="undeclared zones"):
        WarehouseLayout(
            warehouse_id="WH",
            zones=(Zone(zone="A"),),
            bins={"MUG": Bin(location="B-01", zone="B")},
        )


def test_a_warehouse_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        Layout.model_validate({"warehouses": [{"warehouse_id": "W"}, {"warehouse_id": "W"}]})


def test_every_handler_is_reachable_and_the_simulator_is_a_setting() -> None:
    service = definition(PickingSettings())
    assert (service.name, service.schema) == ("picking", "picking_service")
    assert set(service.handlers) == {
        "order.confirmed.v1",
        "order.cancelled.v1",
        "inventory.reserved.v1",
        "inventory.backorder_allocated.v1",
        "picking.confirm_pick.v1",
    }
    assert service.unreachable_handlers() == []
    assert service.router is not None
    assert (service.migrations / "0001_pick_tasks.sql").is_file()
    without_simulator = definition(PickingSettings(simulator=False))
    assert len(without_simulator.background) == len(service.background) - 1
