"""The payment service's wiring: every handled type arrives on a topic it consumes."""

from __future__ import annotations

from services.payment.app import PaymentSettings, definition


def test_handlers_are_reachable() -> None:
    service = definition()
    assert service.name == "payment"
    assert set(service.handlers) == {
        "order.placed.v1",
        "order.cancelled.v1",
        "shipment.dispatched.v1",
        "payment.refund.v1",
    }
    assert service.unreachable_handlers() == []
    assert service.router is None  # health and metrics come from the runtime
    assert (service.migrations / "0001_payments.sql").is_file()


def test_retry_policy_is_bounded() -> None:
    policy = PaymentSettings(gateway_attempts=0).retry_policy()
    assert policy.attempts == 1
    assert PaymentSettings().retry_policy().attempts > 1
