"""The payment service's wiring: every handled type arrives on a topic it consumes."""

from __future__ import annotations

from services.payment.app import PaymentSettings, definition
from shared.runtime.consumer import Batched


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


def test_authorizations_and_captures_share_one_run() -> None:
    """One Batched for both: a poll interleaving order and shipping records is one run."""
    handlers = definition().handlers
    placed, dispatched = handlers["order.placed.v1"], handlers["shipment.dispatched.v1"]
    assert isinstance(placed, Batched)
    assert placed is dispatched
    assert not isinstance(handlers["order.cancelled.v1"], Batched)
    assert not isinstance(handlers["payment.refund.v1"], Batched)


def test_retry_policy_is_bounded() -> None:
    policy = PaymentSettings(gateway_attempts=0).retry_policy()
    assert policy.attempts == 1
    assert PaymentSettings().retry_policy().attempts > 1
