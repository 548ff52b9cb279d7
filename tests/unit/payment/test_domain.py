"""Payment rules and state machine (services/payment/domain.py). No I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from services.payment import domain
from services.payment.domain import (
    TERMINAL,
    TRANSITIONS,
    Authorization,
    Authorize,
    Capture,
    CaptureNow,
    Decline,
    DeferCapture,
    Ignore,
    IllegalTransition,
    Payment,
    PaymentStatus,
    PendingCapture,
    RecordCancellation,
    RefundNow,
    RefuseCapture,
    RefuseRefund,
    Void,
)
from shared.schemas.common import Money
from shared.schemas.events.order import OrderPlaced
from tests.factories import placed_event

S = PaymentStatus
ORDER = "order-1"


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


def placed(token: str | None = "tok_approved", total: int = 5000) -> OrderPlaced:
    return placed_event(ORDER, [("MUG", 1)], unit_price_minor=total, token=token, customer_id="c-1")


AUTH = Authorization("auth-1", "sbx_auth_1", eur(5000))


def payment(status: PaymentStatus = S.NEW, **fields: Any) -> Payment:
    base = Payment.new(ORDER)
    if status in (S.AUTHORIZED, S.VOIDED, S.CAPTURED, S.CAPTURE_FAILED, S.REFUNDED):
        fields.setdefault("authorization", AUTH)
        fields.setdefault("amount", AUTH.amount)
    if status in (S.CAPTURED, S.REFUNDED):
        fields.setdefault("capture", Capture("cap-1", "sbx_cap_1", eur(5000)))
    return replace(base, status=status, **fields)


# --- identity ---


def test_ids_are_deterministic_per_order_and_distinct() -> None:
    assert domain.payment_id_for(ORDER) == domain.payment_id_for(ORDER)
    assert domain.payment_id_for(ORDER) != domain.payment_id_for("order-2")
    ids = {
        domain.payment_id_for(ORDER),
        domain.authorization_id_for(ORDER),
        domain.capture_id_for(ORDER),
    }
    assert len(ids) == 3


def test_idempotency_key_derives_from_the_event() -> None:
    assert domain.idempotency_key("evt-1", "authorize") == "evt-1:authorize"
    assert domain.idempotency_key("evt-1", "void") != domain.idempotency_key("evt-2", "void")


# --- state machine ---


def test_every_status_has_transitions_and_terminals_are_final() -> None:
    assert set(TRANSITIONS) == set(PaymentStatus)
    assert set(TERMINAL) == {S.DECLINED, S.AUTHORIZATION_FAILED, S.CANCELLED, S.VOIDED, S.REFUNDED}
    for status in TERMINAL:
        for target in PaymentStatus:
            with pytest.raises(IllegalTransition):
                domain.transition(status, target)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.NEW, S.AUTHORIZED),
        (S.NEW, S.CANCELLED),
        (S.AUTHORIZED, S.VOIDED),
        (S.AUTHORIZED, S.CAPTURED),
        (S.CAPTURE_FAILED, S.CAPTURED),
        (S.CAPTURE_FAILED, S.VOIDED),
        (S.CAPTURED, S.REFUNDED),
    ],
)
def test_allowed_transitions(current: PaymentStatus, new: PaymentStatus) -> None:
    assert domain.transition(current, new) == new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.NEW, S.CAPTURED),  # never capture without an authorization
        (S.VOIDED, S.CAPTURED),  # never capture a voided authorization
        (S.CAPTURED, S.VOIDED),  # never void a captured one
        (S.CAPTURED, S.CAPTURED),  # never capture twice
        (S.AUTHORIZED, S.AUTHORIZED),  # never authorize twice
        (S.CANCELLED, S.AUTHORIZED),  # never authorize after the cancellation
    ],
)
def test_forbidden_transitions(current: PaymentStatus, new: PaymentStatus) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current} to {new}"):
        domain.transition(current, new)


# --- authorization ---


def test_placed_order_is_authorized_for_its_total_with_its_token() -> None:
    action = domain.on_order_placed(payment(), placed("tok_timeout_once", total=4321))
    assert action == Authorize(eur(4321), "tok_timeout_once")


@pytest.mark.parametrize("token", [None, "", "   "])
def test_placed_order_without_token_is_declined_without_the_gateway(token: str | None) -> None:
    action = domain.on_order_placed(payment(), placed(token))
    assert isinstance(action, Decline)
    assert action.code == "invalid_card"
    assert action.amount == eur(5000)


def test_no_authorization_after_the_cancellation() -> None:
    action = domain.on_order_placed(payment(S.CANCELLED), placed())
    assert isinstance(action, Ignore)
    assert "cancelled" in action.reason


@pytest.mark.parametrize("status", [s for s in PaymentStatus if s not in (S.NEW, S.CANCELLED)])
def test_never_authorized_twice(status: PaymentStatus) -> None:
    assert isinstance(domain.on_order_placed(payment(status), placed()), Ignore)


def test_decline_codes_map_onto_the_contract() -> None:
    assert domain.decline_code("insufficient_funds") == "insufficient_funds"
    assert domain.decline_code("expired_card") == "expired_card"
    assert domain.decline_code("do_not_honor") == "declined"
    assert domain.decline_code(None) == "declined"


# --- cancellation ---


@pytest.mark.parametrize("status", [S.AUTHORIZED, S.CAPTURE_FAILED])
def test_cancellation_voids_a_held_authorization(status: PaymentStatus) -> None:
    assert domain.on_order_cancelled(payment(status)) == Void(AUTH)


def test_cancellation_before_authorization_is_recorded() -> None:
    assert domain.on_order_cancelled(payment()) == RecordCancellation(S.CANCELLED)


@pytest.mark.parametrize("status", [S.DECLINED, S.AUTHORIZATION_FAILED])
def test_cancellation_without_a_hold_keeps_the_status(status: PaymentStatus) -> None:
    assert domain.on_order_cancelled(payment(status)) == RecordCancellation(status)


@pytest.mark.parametrize("status", [S.CANCELLED, S.VOIDED])
def test_nothing_is_voided_twice(status: PaymentStatus) -> None:
    action = domain.on_order_cancelled(payment(status))
    assert isinstance(action, Ignore) and not action.anomaly


@pytest.mark.parametrize("status", [S.CAPTURED, S.REFUNDED])
def test_cancellation_after_capture_is_an_anomaly_not_a_void(status: PaymentStatus) -> None:
    action = domain.on_order_cancelled(payment(status))
    assert isinstance(action, Ignore) and action.anomaly


# --- capture ---


@pytest.mark.parametrize("status", [S.AUTHORIZED, S.CAPTURE_FAILED])
def test_dispatch_captures_the_authorized_amount(status: PaymentStatus) -> None:
    action = domain.on_shipment_dispatched(payment(status), event_id="e1", shipment_id="s1")
    assert action == CaptureNow(AUTH, AUTH.amount, "e1", "s1")


@pytest.mark.parametrize("status", [S.CAPTURED, S.REFUNDED])
def test_at_most_one_capture_per_order(status: PaymentStatus) -> None:
    action = domain.on_shipment_dispatched(payment(status), event_id="e2", shipment_id="s2")
    assert isinstance(action, Ignore) and not action.anomaly


def test_a_voided_authorization_is_not_captured() -> None:
    action = domain.on_shipment_dispatched(payment(S.VOIDED), event_id="e1", shipment_id="s1")
    assert isinstance(action, RefuseCapture)
    assert action.code == "authorization_voided"
    assert action.code in domain.REFUSAL_CODES


@pytest.mark.parametrize("status", [S.DECLINED, S.AUTHORIZATION_FAILED, S.CANCELLED])
def test_dispatch_without_authorization_is_an_anomaly(status: PaymentStatus) -> None:
    action = domain.on_shipment_dispatched(payment(status), event_id="e1", shipment_id="s1")
    assert isinstance(action, Ignore) and action.anomaly


def test_dispatch_before_authorization_waits_for_it_once() -> None:
    action = domain.on_shipment_dispatched(payment(), event_id="e1", shipment_id="s1")
    assert action == DeferCapture(PendingCapture("e1", "s1"))
    waiting = payment(pending_capture=PendingCapture("e1", "s1"))
    again = domain.on_shipment_dispatched(waiting, event_id="e2", shipment_id="s2")
    assert isinstance(again, Ignore)
    # once authorized, the waiting capture goes ahead, keyed by the first dispatch
    authorized = payment(S.AUTHORIZED, pending_capture=PendingCapture("e1", "s1"))
    assert domain.after_authorization(authorized) == CaptureNow(AUTH, AUTH.amount, "e1", "s1")


def test_nothing_waits_after_authorization_without_a_dispatch() -> None:
    assert domain.after_authorization(payment(S.AUTHORIZED)) is None
    declined = payment(S.DECLINED, pending_capture=PendingCapture("e1", "s1"))
    assert domain.after_authorization(declined) is None


# --- refunds ---


def captured(refunded: int = 0) -> Payment:
    return payment(S.CAPTURED, capture=Capture("cap-1", "sbx_cap_1", eur(5000), refunded))


def test_refund_within_the_capture() -> None:
    p = captured(refunded=3000)
    assert p.capture is not None
    assert domain.on_refund_requested(p, eur(2000), already_requested=False) == RefundNow(
        p.capture, eur(2000)
    )


@pytest.mark.parametrize(
    ("refunded", "amount", "code"),
    [
        (0, 5001, "exceeds_refundable"),
        (3000, 2001, "exceeds_refundable"),
        (5000, 1, "exceeds_refundable"),
        (0, 0, "invalid_amount"),
    ],
)
def test_refunds_never_exceed_the_capture(refunded: int, amount: int, code: str) -> None:
    action = domain.on_refund_requested(captured(refunded), eur(amount), already_requested=False)
    assert isinstance(action, RefuseRefund)
    assert action.code == code
    assert code in domain.REFUSAL_CODES


def test_refund_in_another_currency_is_refused() -> None:
    usd = Money(amount_minor=100, currency="USD")
    action = domain.on_refund_requested(captured(), usd, already_requested=False)
    assert isinstance(action, RefuseRefund) and action.code == "currency_mismatch"


@pytest.mark.parametrize("p", [None, payment(), payment(S.AUTHORIZED), payment(S.VOIDED)], ids=str)
def test_refund_of_an_uncaptured_payment_is_refused(p: Payment | None) -> None:
    action = domain.on_refund_requested(p, eur(100), already_requested=False)
    assert isinstance(action, RefuseRefund) and action.code == "not_captured"


def test_a_repeated_refund_id_is_a_no_op() -> None:
    action = domain.on_refund_requested(captured(), eur(100), already_requested=True)
    assert isinstance(action, Ignore)
    # even one that would now be refused
    refused = domain.on_refund_requested(captured(5000), eur(100), already_requested=True)
    assert isinstance(refused, Ignore)


def test_status_after_refund() -> None:
    capture = Capture("cap-1", "sbx_cap_1", eur(5000), refunded_minor=3000)
    assert capture.refundable_minor == 2000
    assert domain.status_after_refund(capture, 1999) == S.CAPTURED
    assert domain.status_after_refund(capture, 2000) == S.REFUNDED


def test_failure_error_puts_the_code_first() -> None:
    assert domain.failure_error("exceeds_refundable", "too much") == "exceeds_refundable: too much"
    assert domain.failure_error(None, "GatewayTimeout: slow") == "GatewayTimeout: slow"
