"""Payment rules and the payment state machine. Pure: no I/O, no asyncio.

One payment per order. Each incoming message is turned into one *action* by a
``on_*`` function; the handlers carry it out (gateway call, rows, events). The rules:

- authorize once, on ``order.placed``, for the order's total; never after the order was
  cancelled;
- void on ``order.cancelled`` if authorized; before an authorization, record the
  cancellation so nothing is authorized later; never void twice;
- capture on ``shipment.dispatched`` the whole authorized amount, only if authorized and
  not voided, at most once per order; a dispatch that arrives before the authorization
  (another topic, so no ordering) waits for it;
- refund on ``payment.refund`` only what was captured: refunds of a capture never add up
  to more than the capture; a ``refund_id`` is handled once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import get_args

from shared.schemas.common import Money
from shared.schemas.events.order import OrderPlaced
from shared.schemas.events.payment import DeclineCode

# --- identity ---

# Fixed forever: changing it would give replayed payments new ids.
PAYMENT_NAMESPACE = uuid.UUID("5b1d7f0e-93a4-5c2b-8e61-0d4c7a9f2e18")


def payment_id_for(order_id: str) -> str:
    """One payment per order, with the same id on every replay."""
    return str(uuid.uuid5(PAYMENT_NAMESPACE, f"payment:{order_id}"))


def authorization_id_for(order_id: str) -> str:
    return str(uuid.uuid5(PAYMENT_NAMESPACE, f"authorization:{order_id}"))


def capture_id_for(order_id: str) -> str:
    return str(uuid.uuid5(PAYMENT_NAMESPACE, f"capture:{order_id}"))


def idempotency_key(event_id: str, operation: str) -> str:
    """The gateway key for the call an event causes: a redelivery makes the same call."""
    return f"{event_id}:{operation}"


# --- state machine ---


class PaymentStatus(StrEnum):
    NEW = "new"  # a dispatch or a refund arrived before order.placed
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    AUTHORIZATION_FAILED = "authorization_failed"
    CANCELLED = "cancelled"  # the order was cancelled before any authorization
    VOIDED = "voided"
    CAPTURED = "captured"  # partial refunds keep it here
    CAPTURE_FAILED = "capture_failed"
    REFUNDED = "refunded"  # refunds add up to the whole capture


_S = PaymentStatus
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _S.NEW: frozenset({_S.AUTHORIZED, _S.DECLINED, _S.AUTHORIZATION_FAILED, _S.CANCELLED}),
    _S.AUTHORIZED: frozenset({_S.VOIDED, _S.CAPTURED, _S.CAPTURE_FAILED}),
    # a later dispatch tries the capture again; a cancellation releases the hold
    _S.CAPTURE_FAILED: frozenset({_S.CAPTURED, _S.CAPTURE_FAILED, _S.VOIDED}),
    _S.CAPTURED: frozenset({_S.REFUNDED}),
    _S.DECLINED: frozenset(),
    _S.AUTHORIZATION_FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.VOIDED: frozenset(),
    _S.REFUNDED: frozenset(),
}
TERMINAL: frozenset[PaymentStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(Exception):
    def __init__(self, current: PaymentStatus, new: PaymentStatus) -> None:
        super().__init__(f"payment cannot go from {current} to {new}")
        self.current = current
        self.new = new


def transition(current: PaymentStatus, new: PaymentStatus) -> PaymentStatus:
    """Return ``new`` if the state machine allows ``current`` → ``new``, else raise."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(current, new)
    return new


# --- the payment as the rules see it ---


@dataclass(frozen=True)
class Authorization:
    authorization_id: str
    gateway_reference: str
    amount: Money
    voided: bool = False


@dataclass(frozen=True)
class Capture:
    capture_id: str
    gateway_reference: str
    amount: Money
    refunded_minor: int = 0

    @property
    def refundable_minor(self) -> int:
        return self.amount.amount_minor - self.refunded_minor


@dataclass(frozen=True)
class PendingCapture:
    """A dispatch seen before the authorization: captured as soon as it is authorized."""

    event_id: str
    shipment_id: str


@dataclass(frozen=True)
class Payment:
    order_id: str
    payment_id: str
    status: PaymentStatus = PaymentStatus.NEW
    amount: Money | None = None
    authorization: Authorization | None = None
    capture: Capture | None = None
    pending_capture: PendingCapture | None = None

    @classmethod
    def new(cls, order_id: str) -> Payment:
        return cls(order_id=order_id, payment_id=payment_id_for(order_id))


# --- actions ---


@dataclass(frozen=True)
class Ignore:
    """Nothing to do. ``anomaly``: worth a warning, someone should look."""

    reason: str
    anomaly: bool = False


@dataclass(frozen=True)
class Authorize:
    amount: Money
    token: str


@dataclass(frozen=True)
class Decline:
    """Declined without asking the gateway (there is nothing to ask it with)."""

    amount: Money
    code: DeclineCode
    message: str


@dataclass(frozen=True)
class RecordCancellation:
    """No authorization to void: remember the cancellation (``status`` afterwards)."""

    status: PaymentStatus


@dataclass(frozen=True)
class Void:
    authorization: Authorization


@dataclass(frozen=True)
class CaptureNow:
    authorization: Authorization
    amount: Money
    event_id: str  # the dispatch that asked for it: the gateway key derives from it
    shipment_id: str


@dataclass(frozen=True)
class DeferCapture:
    pending: PendingCapture


@dataclass(frozen=True)
class RefuseCapture:
    authorization: Authorization
    code: str
    message: str


@dataclass(frozen=True)
class RefundNow:
    capture: Capture
    amount: Money


@dataclass(frozen=True)
class RefuseRefund:
    code: str
    message: str


REFUSAL_CODES: dict[str, str] = {
    "authorization_voided": "capture: the order was cancelled and its authorization voided",
    "not_captured": "refund: the order's payment has not been captured",
    "currency_mismatch": "refund: the currency differs from the capture's",
    "invalid_amount": "refund: the amount is zero",
    "exceeds_refundable": "refund: more than what is left of the capture after earlier refunds",
}


# --- rules ---


def on_order_placed(payment: Payment, placed: OrderPlaced) -> Authorize | Decline | Ignore:
    """Authorize the order's total with its token, once, unless it was cancelled first."""
    if payment.status == PaymentStatus.CANCELLED:
        return Ignore("the order was cancelled before it could be authorized")
    if payment.status != PaymentStatus.NEW:
        return Ignore(f"already {payment.status}")
    amount = Money(amount_minor=placed.amounts.total_minor, currency=placed.currency)
    if placed.payment is None or not placed.payment.token.strip():
        return Decline(amount, "invalid_card", "the order carries no payment token")
    return Authorize(amount, placed.payment.token)


def on_order_cancelled(payment: Payment) -> Void | RecordCancellation | Ignore:
    """Release the hold if there is one; before an authorization, make sure none follows."""
    status = payment.status
    if status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED):
        assert payment.authorization is not None
        return Void(payment.authorization)
    if status == PaymentStatus.NEW:
        return RecordCancellation(PaymentStatus.CANCELLED)
    if status in (PaymentStatus.DECLINED, PaymentStatus.AUTHORIZATION_FAILED):
        return RecordCancellation(status)  # nothing is held
    if status in (PaymentStatus.CANCELLED, PaymentStatus.VOIDED):
        return Ignore(f"already {status}: nothing is voided twice")
    # captured or refunded: money moved; giving it back is a payment.refund command
    return Ignore(f"cancelled after the payment was {status}; refunds are commands", anomaly=True)


def on_shipment_dispatched(
    payment: Payment, *, event_id: str, shipment_id: str
) -> CaptureNow | DeferCapture | RefuseCapture | Ignore:
    """Capture the authorized amount on the first dispatch; later ones change nothing."""
    status = payment.status
    auth = payment.authorization
    if status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURE_FAILED):
        assert auth is not None
        return CaptureNow(auth, auth.amount, event_id, shipment_id)
    if status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        return Ignore("already captured: at most one capture per order")
    if status == PaymentStatus.NEW:
        if payment.pending_capture is not None:
            return Ignore("a capture is already waiting for the authorization")
        return DeferCapture(PendingCapture(event_id, shipment_id))
    if status == PaymentStatus.VOIDED:
        assert auth is not None
        return RefuseCapture(auth, "authorization_voided", REFUSAL_CODES["authorization_voided"])
    return Ignore(f"shipped, but there is no authorization to capture ({status})", anomaly=True)


def after_authorization(payment: Payment) -> CaptureNow | None:
    """The capture a dispatch asked for before the authorization existed, if any."""
    pending = payment.pending_capture
    if pending is None or payment.status != PaymentStatus.AUTHORIZED:
        return None
    action = on_shipment_dispatched(
        payment, event_id=pending.event_id, shipment_id=pending.shipment_id
    )
    return action if isinstance(action, CaptureNow) else None


def refund_problem(capture: Capture, amount: Money) -> RefuseRefund | None:
    """Why ``amount`` cannot be refunded from ``capture`` now, or None if it can."""
    if amount.currency != capture.amount.currency:
        return RefuseRefund(
            "currency_mismatch",
            f"refund in {amount.currency}, capture in {capture.amount.currency}",
        )
    if amount.amount_minor <= 0:
        return RefuseRefund("invalid_amount", "a refund must be more than zero")
    if amount.amount_minor > capture.refundable_minor:
        return RefuseRefund(
            "exceeds_refundable",
            f"{amount.amount_minor} requested, {capture.refundable_minor} refundable "
            f"(captured {capture.amount.amount_minor}, refunded {capture.refunded_minor})",
        )
    return None


def on_refund_requested(
    payment: Payment | None, amount: Money, *, already_requested: bool
) -> RefundNow | RefuseRefund | Ignore:
    """Refund from the capture, within what is left of it; a refund id is handled once."""
    if already_requested:
        return Ignore("this refund_id was handled before")
    if payment is None or payment.capture is None:
        status = payment.status if payment else "unknown"
        return RefuseRefund("not_captured", f"nothing captured to refund (payment {status})")
    return refund_problem(payment.capture, amount) or RefundNow(payment.capture, amount)


def status_after_refund(capture: Capture, refunded_now_minor: int) -> PaymentStatus:
    if capture.refunded_minor + refunded_now_minor >= capture.amount.amount_minor:
        return PaymentStatus.REFUNDED
    return PaymentStatus.CAPTURED


_DECLINE_CODES: dict[str, DeclineCode] = {code: code for code in get_args(DeclineCode)}


def decline_code(code: str | None) -> DeclineCode:
    """The contract's decline code for a gateway's; anything unknown is ``declined``."""
    return _DECLINE_CODES.get(code or "", "declined")


def failure_error(code: str | None, message: str) -> str:
    """A refusal as the ``error`` of a ``*_failed`` event: stable code first."""
    return f"{code}: {message}" if code else message
