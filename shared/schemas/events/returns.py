"""Returns context: after-sales requests (RMA), inspection, refunds, exchanges, restock.

Topic ``returns.events`` (single writer: services/returns) and ``returns.commands``
(customers and support agents through the portal, warehouse staff). Key: order id.
A refund is asked of payment with a ``payment.refund`` command; a restock is applied by
inventory from ``returns.restocked``; an exchange is placed by order from
``returns.exchange_created``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import Money, Quantity, Reason, Text, Value
from shared.schemas.registry import Message, command, event

ReturnReason = Literal[
    "damaged",
    "defective",
    "wrong_item",
    "not_as_described",
    "size_or_fit",
    "no_longer_needed",
    "other",
]
Resolution = Literal["refund", "exchange"]
Condition = Literal["resellable", "opened", "damaged", "defective", "missing"]


class ReturnLine(Value):
    """Units of one order line the customer sends back, and why."""

    line_id: Text
    sku: Text
    quantity: Quantity
    reason: ReturnReason
    comment: Text = ""


class ExchangeLine(Value):
    """What the customer wants instead of a returned line."""

    line_id: Text = Field(description="the returned order line")
    sku: Text
    quantity: Quantity


class ReceivedLine(Value):
    """Units of one line that arrived at the warehouse, and their condition."""

    line_id: Text
    sku: Text
    quantity: Quantity
    condition: Condition


class InspectedLine(ReceivedLine):
    restock: bool = Field(description="true when the units go back into sellable stock")


class RestockedLine(Value):
    line_id: Text
    sku: Text
    quantity: Quantity


class ReturnEvent(Message):
    order_id: Text
    return_id: Text
    occurred_at: datetime


# --- events ---


@event("returns.requested.v1")
class ReturnRequested(ReturnEvent):
    """A customer or agent asked to return lines of a delivered order."""

    customer_id: Text
    lines: list[ReturnLine]
    resolution: Resolution
    exchange_lines: list[ExchangeLine] = []


@event("returns.approved.v1")
class ReturnApproved(ReturnEvent):
    """The return was accepted (automatically or by staff); the customer may send it."""

    rma_number: Text
    approved_by: Text
    return_carrier: Text | None = None
    return_tracking_number: Text | None = None
    expires_at: datetime | None = None


@event("returns.rejected.v1")
class ReturnRejected(ReturnEvent):
    """The return was refused (outside the window, not returnable, staff decision)."""

    reasons: list[Reason]
    rejected_by: Text


@event("returns.received.v1")
class ReturnReceived(ReturnEvent):
    """The returned parcel arrived at a warehouse."""

    warehouse_id: Text
    lines: list[ReceivedLine]
    received_by: Text


@event("returns.inspected.v1")
class ReturnInspected(ReturnEvent):
    """Each received line was graded; only resellable units are restocked."""

    warehouse_id: Text
    lines: list[InspectedLine]
    inspected_by: Text


@event("returns.refund_requested.v1")
class ReturnRefundRequested(ReturnEvent):
    """The refund for inspected lines was asked of payment (``payment.refund`` command)."""

    refund_id: Text
    amount: Money


@event("returns.exchange_created.v1")
class ExchangeCreated(ReturnEvent):
    """Replacement items are due; services/order places the replacement order."""

    exchange_id: Text
    lines: list[ExchangeLine]


@event("returns.restocked.v1")
class ReturnRestocked(ReturnEvent):
    """Resellable returned units go back to stock; services/inventory books them."""

    warehouse_id: Text
    lines: list[RestockedLine]


@event("returns.completed.v1")
class ReturnCompleted(ReturnEvent):
    """Nothing more will happen to the return: refunded, exchanged, or closed without either."""

    outcome: Literal["refunded", "exchanged", "closed"]
    refunded: Money | None = None
    exchange_id: Text | None = None


# --- commands ---


@command("returns.request.v1")
class RequestReturn(Message):
    """A customer or support agent asks to return lines; ``return_id`` is chosen by the caller."""

    order_id: Text
    return_id: Text
    customer_id: Text
    lines: list[ReturnLine]
    resolution: Resolution
    exchange_lines: list[ExchangeLine] = []
    requested_by: Literal["customer", "staff"]
    actor_id: Text


@command("returns.decide.v1")
class DecideReturn(Message):
    """Staff approve or reject a return that needs a human decision."""

    order_id: Text
    return_id: Text
    decision: Literal["approve", "reject"]
    staff_id: Text
    note: Text = ""


@command("returns.receive.v1")
class ReceiveReturn(Message):
    """Warehouse staff book a returned parcel and grade each line."""

    order_id: Text
    return_id: Text
    warehouse_id: Text
    lines: list[ReceivedLine]
    received_by: Text
