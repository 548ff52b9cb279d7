"""The inventory service's handlers arrive on topics it consumes."""

from __future__ import annotations

from services.inventory.app import definition


def test_every_handler_is_reachable() -> None:
    service = definition()
    assert service.name == "inventory" and service.schema == "inventory_service"
    assert set(service.handlers) == {
        "order.placed.v1",
        "order.cancelled.v1",
        "shipment.dispatched.v1",
        "inventory.receive_stock.v1",
        "returns.restocked.v1",
    }
    assert service.unreachable_handlers() == []
    assert (service.migrations / "0001_stock_and_reservations.sql").is_file()
    assert len(service.background) == 1  # start-up seeding
