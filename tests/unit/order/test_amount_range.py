"""Amounts past int64: a submission whose line total or subtotal cannot be carried is
rejected with a reason (order.rejected.v1 / HTTP 422), never a ValidationError."""

from __future__ import annotations

from typing import Any

from services.order.domain import REASON_CODES, Accepted, Rejected, validate_submission
from shared.schemas.common import INT64_MAX
from shared.schemas.events.order import SubmitOrder
from tests.unit.order.test_domain import valid


def decide(data: dict[str, Any]) -> Accepted | Rejected:
    return validate_submission(SubmitOrder.model_validate(data))


def test_a_subtotal_past_int64_with_a_total_that_fits_is_rejected() -> None:
    data = valid()
    data["lines"] = [
        {"sku": "SKU-A", "quantity": 1, "unit_price_minor": 2**62},
        {"sku": "SKU-B", "quantity": 1, "unit_price_minor": 2**62},
    ]
    data.update(shipping_minor=0, tax_minor=0, discount_minor=10, total_minor=2**63 - 10)

    result = decide(data)

    assert isinstance(result, Rejected)
    assert [(r.code, r.field) for r in result.reasons] == [("amount_out_of_range", "lines")]
    assert str(2**63) in result.reasons[0].message


def test_a_line_total_past_int64_is_rejected_on_its_line() -> None:
    data = valid()
    data["lines"][1] = {"sku": "SKU-B", "quantity": 3, "unit_price_minor": INT64_MAX // 2}
    data.update(shipping_minor=0, tax_minor=0, discount_minor=0, total_minor=INT64_MAX)

    result = decide(data)

    assert isinstance(result, Rejected)
    assert [(r.code, r.field) for r in result.reasons] == [
        ("amount_out_of_range", "lines[1].unit_price_minor")
    ]


def test_a_subtotal_of_exactly_int64_max_is_accepted() -> None:
    data = valid()
    data["lines"] = [
        {"sku": "SKU-A", "quantity": 1, "unit_price_minor": INT64_MAX - 1},
        {"sku": "SKU-B", "quantity": 1, "unit_price_minor": 1},
    ]
    data.update(shipping_minor=5, tax_minor=0, discount_minor=5, total_minor=INT64_MAX)

    result = decide(data)

    assert isinstance(result, Accepted)
    assert result.amounts.subtotal_minor == INT64_MAX


def test_the_reason_is_documented() -> None:
    assert REASON_CODES["amount_out_of_range"]
