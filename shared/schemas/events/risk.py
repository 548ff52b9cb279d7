"""Risk context: the fraud/velocity check on placed orders (a faust-streaming service).

Topic ``risk.events`` (single writer: services/risk). Key: order id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import Reason, Text
from shared.schemas.registry import Message, event


@event("risk.assessed.v1")
class RiskAssessed(Message):
    """The check scored an order after ``order.placed``: pass, hold for review, or reject."""

    order_id: Text
    assessment_id: Text
    customer_id: Text | None = None
    verdict: Literal["pass", "review", "reject"]
    score: int = Field(ge=0, le=100, description="0 = no sign of fraud, 100 = certain fraud")
    reasons: list[Reason] = []
    occurred_at: datetime
