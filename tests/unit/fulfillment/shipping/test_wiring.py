"""The shipping service's wiring and settings."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from services.fulfillment.shipping.app import DEV_WEBHOOK_SECRET, ShippingSettings, definition

FROM_ENV = "whsec_" + base64.b64encode(b"a secret from the environment").decode()


def test_handlers_are_reachable() -> None:
    service = definition(ShippingSettings())
    assert service.name == "shipping"
    assert service.schema == "shipping_service"
    assert set(service.handlers) == {
        "order.placed.v1",
        "order.cancelled.v1",
        "packing.packed.v1",
        "shipping.carrier_update.v1",
    }
    assert service.unreachable_handlers() == []
    assert service.router is not None
    assert (service.migrations / "0001_shipments.sql").is_file()
    assert len(service.background) == 2  # the carrier's ledger, the simulator


def test_the_simulator_can_be_turned_off() -> None:
    service = definition(ShippingSettings(simulator_enabled=False))
    assert len(service.background) == 1


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_SHIPPING_WEBHOOK_SECRET", FROM_ENV)
    monkeypatch.setenv("CONVEYOR_SHIPPING_WEBHOOK_TOLERANCE_S", "60")
    monkeypatch.setenv("CONVEYOR_SHIPPING_WEBHOOK_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("CONVEYOR_SHIPPING_SIMULATOR_STEP_SECONDS", "0")
    monkeypatch.setenv(
        "CONVEYOR_SHIPPING_SERVICE_LEVEL_DAYS", '{"standard": 4, "express": 2, "overnight": 1}'
    )
    settings = ShippingSettings()
    assert settings.webhook_secret == FROM_ENV
    assert (settings.webhook_tolerance_s, settings.webhook_max_body_bytes) == (60, 4096)
    assert settings.webhook_clock_skew_s == 300  # the default
    assert settings.simulator().step_seconds == 0
    assert settings.service_level_days["standard"] == 4


def test_production_refuses_the_dev_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        ShippingSettings()
    assert ShippingSettings(webhook_secret=FROM_ENV).webhook_secret != DEV_WEBHOOK_SECRET


def test_the_webhook_secret_must_be_a_standard_webhooks_secret() -> None:
    for bad in ("a real one", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
            ShippingSettings(webhook_secret=bad)


def test_every_service_level_needs_a_day_count() -> None:
    with pytest.raises(ValidationError, match="overnight"):
        ShippingSettings(service_level_days={"standard": 5, "express": 2})
    with pytest.raises(ValidationError):
        ShippingSettings(simulator_exception_probability=1.5)
