"""The portal's projection rules, pure: order tracking and stock availability."""

from services.portal.domain.availability import (
    Availability,
    StockPosition,
    apply_level,
    summarize,
)
from services.portal.domain.tracking import (
    PAYMENT_STATUS_BY_EVENT,
    STATUS_BY_EVENT,
    STOCK_STATUS_BY_EVENT,
    TRACKED,
    Change,
    OrderView,
    TimelineEntry,
    apply,
)

__all__ = [
    "PAYMENT_STATUS_BY_EVENT",
    "STATUS_BY_EVENT",
    "STOCK_STATUS_BY_EVENT",
    "TRACKED",
    "Availability",
    "Change",
    "OrderView",
    "StockPosition",
    "TimelineEntry",
    "apply",
    "apply_level",
    "summarize",
]
