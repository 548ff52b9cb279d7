"""Payment context: authorize, void, capture and refund through the gateway adapter.

Topic ``payment.events`` (single writer: services/payment) and ``payment.commands``
(refund requests from the returns service and from staff in the portal). Key: order id.
Amounts are :class:`Money` (integer minor units + currency), never floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import Money
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
    order_id: str
    payment_id: str = Field(description="Conveyor's id for the order's payment")
    amount: Money
    occurred_at: datetime


class GatewayFailure(PaymentEvent):
    """The gateway kept failing (timeouts, 5xx) until the retries ran out."""

    error: str = Field(description="the last gateway error")
    attempts: int = Field(ge=1)


@event("payment.authorized.v1")
class PaymentAuthorized(PaymentEvent):
    """The gateway holds ``amount``; emitted once per order after ``order.placed``."""

    authorization_id: str
    gateway_reference: str
    expires_at: datetime | None = None


@event("payment.declined.v1")
class PaymentDeclined(PaymentEvent):
    """The gateway refused the authorization; the order cannot be confirmed."""

    code: DeclineCode
    message: str = ""
    gateway_reference: str | None = None


@event("payment.authorization_failed.v1")
class PaymentAuthorizationFailed(GatewayFailure):
    """No authorization decision could be had from the gateway after bounded retries."""


@event("payment.voided.v1")
class PaymentVoided(PaymentEvent):
    """The authorization was released because the order was cancelled before shipping."""

    authorization_id: str
    gateway_reference: str


@event("payment.captured.v1")
class PaymentCaptured(PaymentEvent):
    """The authorized amount was captured when the order's shipment was dispatched."""

    authorization_id: str
    capture_id: str
    gateway_reference: str
    shipment_id: str | None = None


@event("payment.capture_failed.v1")
class PaymentCaptureFailed(GatewayFailure):
    """Capture failed after retries (e.g. the authorization expired); staff follow up."""

    authorization_id: str


@event("payment.refunded.v1")
class PaymentRefunded(PaymentEvent):
    """Money went back to the customer, after a ``payment.refund`` command."""

    refund_id: str
    capture_id: str
    gateway_reference: str
    return_id: str | None = None


@event("payment.refund_failed.v1")
class PaymentRefundFailed(GatewayFailure):
    """The refund could not be made (gateway errors or refusal); staff follow up."""

    refund_id: str
    return_id: str | None = None


@command("payment.refund.v1")
class RefundPayment(Message):
    """Returns (after inspection) or staff ask for money back on a captured payment."""

    order_id: str
    refund_id: str = Field(description="idempotency key chosen by the requester; retries reuse it")
    amount: Money
    reason: str
    return_id: str | None = None
    requested_by: str = Field(description="'returns' or the staff member's id")
