"""Payment context: authorize, void, capture and refund through the gateway adapter.

Topic ``payment.events`` (single writer: services/payment) and ``payment.commands``
(refund requests from the returns service and from staff in the portal). Key: order id.
Amounts are :class:`Money` (integer minor units + currency), never floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import INT32_MAX, Money, Text
from shared.schemas.registry import Message, command, event

DeclineCode = Literal[
    "declined",
    "insufficient_funds",
    "expired_card",
    "invalid_card",
    "suspected_fraud",
    "limit_exceeded",
]


class PaymentEvent(Message):
    order_id: Text
    payment_id: Text = Field(description="Conveyor's id for the order's payment")
    amount: Money
    occurred_at: datetime


class GatewayFailure(PaymentEvent):
    """The gateway kept failing (timeouts, 5xx) until the retries ran out."""

    error: Text = Field(description="the last gateway error")
    attempts: int = Field(ge=1, le=INT32_MAX)


@event("payment.authorized.v1")
class PaymentAuthorized(PaymentEvent):
    """The gateway holds ``amount``; emitted once per order after ``order.placed``."""

    authorization_id: Text
    gateway_reference: Text
    expires_at: datetime | None = None


@event("payment.declined.v1")
class PaymentDeclined(PaymentEvent):
    """The gateway refused the authorization; the order cannot be confirmed."""

    code: DeclineCode
    message: Text = ""
    gateway_reference: Text | None = None


@event("payment.authorization_failed.v1")
class PaymentAuthorizationFailed(GatewayFailure):
    """No authorization decision could be had from the gateway after bounded retries."""


@event("payment.voided.v1")
class PaymentVoided(PaymentEvent):
    """The authorization was released because the order was cancelled before shipping."""

    authorization_id: Text
    gateway_reference: Text


@event("payment.captured.v1")
class PaymentCaptured(PaymentEvent):
    """The authorized amount was captured when the order's shipment was dispatched."""

    authorization_id: Text
    capture_id: Text
    gateway_reference: Text
    shipment_id: Text | None = None


@event("payment.capture_failed.v1")
class PaymentCaptureFailed(GatewayFailure):
    """Capture failed after retries (e.g. the authorization expired); staff follow up."""

    authorization_id: Text


@event("payment.refunded.v1")
class PaymentRefunded(PaymentEvent):
    """Money went back to the customer, after a ``payment.refund`` command."""

    refund_id: Text
    capture_id: Text
    gateway_reference: Text
    return_id: Text | None = None


@event("payment.refund_failed.v1")
class PaymentRefundFailed(GatewayFailure):
    """The refund could not be made (gateway errors or refusal); staff follow up."""

    refund_id: Text
    return_id: Text | None = None


@command("payment.refund.v1")
class RefundPayment(Message):
    """Returns (after inspection) or staff ask for money back on a captured payment."""

    order_id: Text
    refund_id: Text = Field(description="idempotency key chosen by the requester; retries reuse it")
    amount: Money
    reason: Text
    return_id: Text | None = None
    requested_by: Text = Field(description="'returns' or the staff member's id")
