"""The order's rules, pure: submission validation, the state machine, the saga."""

from services.order.domain.fulfillment import Advanced, FulfillmentFact, record_progress
from services.order.domain.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    can_cancel,
    transition,
)
from services.order.domain.progress import Progress, consignment
from services.order.domain.saga import Order, Outcome, Refused, cancel, decide_review, record
from services.order.domain.submission import (
    MAX_LINES,
    MAX_QUANTITY_PER_LINE,
    ORDER_NAMESPACE,
    REASON_CODES,
    REFERENCE_CONFLICT,
    SERVICE_LEVELS,
    Accepted,
    Rejected,
    order_id_for,
    reference_conflict,
    validate_submission,
)

__all__ = [
    "MAX_LINES",
    "MAX_QUANTITY_PER_LINE",
    "ORDER_NAMESPACE",
    "REASON_CODES",
    "REFERENCE_CONFLICT",
    "SERVICE_LEVELS",
    "TERMINAL",
    "TRANSITIONS",
    "Accepted",
    "Advanced",
    "FulfillmentFact",
    "IllegalTransition",
    "Order",
    "OrderStatus",
    "Outcome",
    "Progress",
    "Refused",
    "Rejected",
    "can_cancel",
    "cancel",
    "consignment",
    "decide_review",
    "order_id_for",
    "record",
    "record_progress",
    "reference_conflict",
    "transition",
    "validate_submission",
]
