"""Order context: storefront submissions, the order's state changes, customer/staff commands.

Topic ``order.commands`` (many writers: storefronts, portal, staff) and ``order.events``
(single writer: services/order). Key: order id; for a submission, the storefront
reference, because the order id is derived from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import (
    INT32_MAX,
    Address,
    Amounts,
    Customer,
    Int64,
    OrderLine,
    Reason,
    Text,
    Value,
)
from shared.schemas.registry import Message, command, event

# --- storefront submission (structure only: business rules live in services/order) ---


class SubmittedLine(Value):
    sku: Text
    quantity: Int64
    unit_price_minor: Int64


class SubmittedAddress(Value):
    name: Text = ""
    line1: Text = ""
    line2: Text | None = None
    city: Text = ""
    region: Text | None = None
    postal_code: Text = ""
    country: Text = ""


class SubmittedCustomer(Value):
    customer_id: Text = ""
    email: Text = ""
    name: Text | None = None


class PaymentInstrument(Value):
    method: Text = "card"
    token: Text = Field(description="gateway token; the sandbox gateway reads outcomes from it")


@command("order.submit.v1", subject="storefront_reference")
class SubmitOrder(Message):
    """A storefront asks for an order. Resubmitting the same reference yields the same order."""

    storefront_id: Text
    storefront_reference: Text
    customer: SubmittedCustomer
    lines: list[SubmittedLine]
    currency: Text
    shipping_address: SubmittedAddress
    billing_address: SubmittedAddress | None = None
    shipping_minor: Int64 = 0
    tax_minor: Int64 = 0
    discount_minor: Int64 = 0
    total_minor: Int64
    service_level: Text = "standard"
    payment: PaymentInstrument | None = None
    submitted_at: datetime | None = None


# --- order state changes (owned by services/order; order_version orders them) ---


class OrderEvent(Message):
    order_id: Text
    order_version: int = Field(
        ge=1, le=INT32_MAX, description="the order's version after this change"
    )
    occurred_at: datetime


@event("order.placed.v1")
class OrderPlaced(OrderEvent):
    storefront_id: Text
    storefront_reference: Text
    customer: Customer
    lines: list[OrderLine]
    currency: Text
    amounts: Amounts
    shipping_address: Address
    billing_address: Address | None = None
    service_level: Text
    payment: PaymentInstrument | None = None


@event("order.rejected.v1")
class OrderRejected(OrderEvent):
    """A submission was refused: it failed validation (nothing else will happen to this
    order), or it reused the reference of an order already submitted with another body
    (reason ``reference_conflict``: the event names that order at its current version, which
    goes on unchanged)."""

    storefront_id: Text
    storefront_reference: Text
    customer_id: Text | None = None
    reasons: list[Reason]


@event("order.awaiting_review.v1")
class OrderAwaitingReview(OrderEvent):
    """The risk check asked for a human decision; the order is held."""

    reasons: list[Reason]


@event("order.confirmed.v1")
class OrderConfirmed(OrderEvent):
    """Payment authorized, stock reserved (or backordered), risk passed."""

    authorization_id: Text
    reservation_id: Text
    backordered_skus: list[Text] = []
    expected_ship_date: date | None = None


@event("order.cancelled.v1")
class OrderCancelled(OrderEvent):
    """Cancelled; compensations (void, release) are requested by the services that react."""

    reasons: list[Reason]
    cancelled_by: Literal["customer", "staff", "system"]


@event("order.picking_started.v1")
class OrderPickingStarted(OrderEvent):
    pass


@event("order.packed.v1")
class OrderPacked(OrderEvent):
    package_count: int = Field(ge=1, le=INT32_MAX)


@event("order.shipped.v1")
class OrderShipped(OrderEvent):
    shipment_ids: list[Text]
    estimated_delivery: date | None = None


@event("order.delivery_exception.v1")
class OrderDeliveryException(OrderEvent):
    reasons: list[Reason]


@event("order.delivered.v1")
class OrderDelivered(OrderEvent):
    pass


@event("order.completed.v1")
class OrderCompleted(OrderEvent):
    pass


# --- requests to the order service from the portal and staff ---


@command("order.cancel.v1")
class CancelOrder(Message):
    """Customer or staff asks to cancel; allowed until picking starts."""

    order_id: Text
    requested_by: Literal["customer", "staff"]
    actor_id: Text
    reason: Text = ""


@command("order.review_decide.v1")
class DecideReview(Message):
    """Staff releases or rejects an order held for risk review."""

    order_id: Text
    decision: Literal["release", "reject"]
    staff_id: Text
    note: Text = ""
