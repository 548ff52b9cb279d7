"""Order placement rules and state machine (services/order/domain.py). No I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.order.domain import (
    MAX_LINES,
    MAX_QUANTITY_PER_LINE,
    REASON_CODES,
    REFERENCE_CONFLICT,
    TERMINAL,
    TRANSITIONS,
    Accepted,
    IllegalTransition,
    OrderStatus,
    Rejected,
    can_cancel,
    order_id_for,
    reference_conflict,
    transition,
    validate_submission,
)
from shared.schemas.common import Address, Amounts, OrderLine
from shared.schemas.events.order import SubmitOrder

S = OrderStatus


def valid() -> dict[str, Any]:
    """A valid submission: subtotal 2*1250 + 1*999 = 3499; total 3499+500+700-200 = 4499."""
    address = {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    }
    return {
        "storefront_id": "shop-1",
        "storefront_reference": "R-1001",
        "customer": {"customer_id": "c-42", "email": "ada@example.org", "name": "Ada"},
        "lines": [
            {"sku": "SKU-A", "quantity": 2, "unit_price_minor": 1250},
            {"sku": "SKU-B", "quantity": 1, "unit_price_minor": 999},
        ],
        "currency": "GBP",
        "shipping_address": address,
        "billing_address": dict(address, line1="1 Other Street"),
        "shipping_minor": 500,
        "tax_minor": 700,
        "discount_minor": 200,
        "total_minor": 4499,
        "service_level": "express",
        "payment": {"method": "card", "token": "tok_ok"},
    }


def validate(data: dict[str, Any]) -> Accepted | Rejected:
    return validate_submission(SubmitOrder.model_validate(data))


def rejected(data: dict[str, Any]) -> Rejected:
    result = validate(data)
    assert isinstance(result, Rejected), result
    return result


# --- accepted ---


def test_valid_submission_is_accepted_with_line_totals_and_amounts() -> None:
    result = validate(valid())

    assert isinstance(result, Accepted)
    assert result.order_id == order_id_for("shop-1", "R-1001")
    assert result.lines == [
        OrderLine(
            line_id="1", sku="SKU-A", quantity=2, unit_price_minor=1250, line_total_minor=2500
        ),
        OrderLine(line_id="2", sku="SKU-B", quantity=1, unit_price_minor=999, line_total_minor=999),
    ]
    assert result.amounts == Amounts(
        subtotal_minor=3499, shipping_minor=500, tax_minor=700, discount_minor=200, total_minor=4499
    )
    assert result.currency == "GBP"
    assert result.customer.customer_id == "c-42"
    assert result.customer.email == "ada@example.org"
    assert isinstance(result.shipping_address, Address)
    assert result.shipping_address.city == "London"
    assert result.billing_address is not None
    assert result.billing_address.line1 == "1 Other Street"
    assert result.service_level == "express"
    assert result.payment is not None and result.payment.token == "tok_ok"


def test_billing_address_is_optional_and_defaults_apply() -> None:
    data = valid()
    del data["billing_address"], data["service_level"]
    data.update(shipping_minor=0, tax_minor=0, discount_minor=0, total_minor=3499)

    result = validate(data)

    assert isinstance(result, Accepted)
    assert result.billing_address is None
    assert result.service_level == "standard"


def test_zero_price_and_full_discount_are_allowed() -> None:
    data = valid()
    data["lines"][1]["unit_price_minor"] = 0  # a free gift
    data.update(discount_minor=3000, total_minor=2500 + 500 + 700 - 3000)

    assert isinstance(validate(data), Accepted)


# --- order id ---


def test_order_id_is_deterministic_uuid() -> None:
    order_id = order_id_for("shop-1", "R-1001")

    assert order_id == order_id_for("shop-1", "R-1001")
    assert uuid.UUID(order_id).version == 5
    assert order_id != order_id_for("shop-1", "R-1002")
    assert order_id != order_id_for("shop-2", "R-1001")
    assert order_id_for("a:b", "c") != order_id_for("a", "b:c")


def test_resubmission_gets_the_same_order_id_even_when_rejected() -> None:
    bad = valid()
    bad["lines"] = []

    assert rejected(bad).order_id == validate(valid()).order_id


# --- rejections: one minimal bad input per code ---

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting e.g. ``"lines.1.sku"`` (list indices as numbers)."""
    *parents, last = path.split(".")

    def mutate(data: dict[str, Any]) -> None:
        target: Any = data
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value

    return mutate


def _dup_sku(data: dict[str, Any]) -> None:
    data["lines"].append({"sku": "SKU-A", "quantity": 1, "unit_price_minor": 0})


def _too_many_lines(data: dict[str, Any]) -> None:
    data["lines"] = [
        {"sku": f"S{i}", "quantity": 1, "unit_price_minor": 1} for i in range(MAX_LINES + 1)
    ]
    data.update(shipping_minor=0, tax_minor=0, discount_minor=0, total_minor=MAX_LINES + 1)


CASES: list[tuple[str, Mutation, str]] = [
    ("missing_storefront_id", _set("storefront_id", ""), "storefront_id"),
    ("missing_storefront_reference", _set("storefront_reference", " "), "storefront_reference"),
    ("missing_customer", _set("customer.customer_id", ""), "customer.customer_id"),
    ("invalid_email", _set("customer.email", "ada.example.org"), "customer.email"),
    ("invalid_email", _set("customer.email", "ada@@example.org"), "customer.email"),
    ("invalid_email", _set("customer.email", "ada@localhost"), "customer.email"),
    ("invalid_email", _set("customer.email", "a da@example.org"), "customer.email"),
    ("invalid_email", _set("customer.email", "ada@example.org\n"), "customer.email"),
    ("no_lines", _set("lines", []), "lines"),
    ("too_many_lines", _too_many_lines, "lines"),
    ("missing_sku", _set("lines.1.sku", ""), "lines[1].sku"),
    ("quantity_not_positive", _set("lines.1.quantity", 0), "lines[1].quantity"),
    (
        "quantity_too_large",
        _set("lines.1.quantity", MAX_QUANTITY_PER_LINE + 1),
        "lines[1].quantity",
    ),
    ("negative_price", _set("lines.0.unit_price_minor", -1), "lines[0].unit_price_minor"),
    ("duplicate_sku", _dup_sku, "lines[2].sku"),
    ("invalid_currency", _set("currency", "gbp"), "currency"),
    ("invalid_currency", _set("currency", "ABC"), "currency"),
    ("invalid_currency", _set("currency", "GBPX"), "currency"),
    ("negative_amount", _set("shipping_minor", -1), "shipping_minor"),
    ("negative_amount", _set("tax_minor", -1), "tax_minor"),
    ("negative_amount", _set("discount_minor", -1), "discount_minor"),
    (
        "discount_exceeds_subtotal",
        lambda d: d.update(discount_minor=4000, total_minor=699),
        "discount_minor",
    ),
    ("total_mismatch", _set("total_minor", 4500), "total_minor"),
    ("amount_out_of_range", _set("lines.0.unit_price_minor", 2**62), "lines[0].unit_price_minor"),
    ("missing_address_field", _set("shipping_address.name", ""), "shipping_address.name"),
    ("missing_address_field", _set("shipping_address.line1", ""), "shipping_address.line1"),
    ("missing_address_field", _set("shipping_address.city", "  "), "shipping_address.city"),
    (
        "missing_address_field",
        _set("shipping_address.postal_code", ""),
        "shipping_address.postal_code",
    ),
    ("missing_address_field", _set("shipping_address.country", ""), "shipping_address.country"),
    ("invalid_country", _set("shipping_address.country", "XX"), "shipping_address.country"),
    ("invalid_country", _set("shipping_address.country", "gb"), "shipping_address.country"),
    ("invalid_country", _set("shipping_address.country", "GBR"), "shipping_address.country"),
    ("missing_address_field", _set("billing_address.city", ""), "billing_address.city"),
    ("invalid_country", _set("billing_address.country", "ZZ"), "billing_address.country"),
    ("invalid_service_level", _set("service_level", "teleport"), "service_level"),
    ("invalid_service_level", _set("service_level", "Express"), "service_level"),
    ("missing_payment", _set("payment", None), "payment"),
    ("missing_payment", _set("payment.token", ""), "payment.token"),
]


@pytest.mark.parametrize(("code", "mutate", "field"), CASES)
def test_each_problem_is_rejected_with_its_code(code: str, mutate: Mutation, field: str) -> None:
    data = valid()
    mutate(data)

    result = rejected(data)

    assert [(r.code, r.field) for r in result.reasons] == [(code, field)]
    assert result.reasons[0].message


def test_every_reason_code_is_covered_and_documented() -> None:
    assert {code for code, _, _ in CASES} == set(REASON_CODES)
    assert all(REASON_CODES.values())


def test_total_mismatch_message_states_expected_and_given() -> None:
    data = valid()
    data["total_minor"] = 4500

    (reason,) = rejected(data).reasons

    assert "expected 4499" in reason.message
    assert "given 4500" in reason.message


def test_several_problems_are_all_reported_in_a_stable_order() -> None:
    data = valid()
    data["storefront_reference"] = ""
    data["customer"]["email"] = "nope"
    data["lines"][0]["quantity"] = -3
    data["lines"][1]["sku"] = ""
    data["currency"] = "EURO"
    data["tax_minor"] = -5
    data["shipping_address"]["city"] = ""
    data["shipping_address"]["country"] = "Narnia"
    data["service_level"] = "warp"
    data["payment"] = None

    first, second = rejected(data), rejected(data)

    expected = [
        ("missing_storefront_reference", "storefront_reference"),
        ("invalid_email", "customer.email"),
        ("quantity_not_positive", "lines[0].quantity"),
        ("missing_sku", "lines[1].sku"),
        ("invalid_currency", "currency"),
        ("negative_amount", "tax_minor"),
        ("missing_address_field", "shipping_address.city"),
        ("invalid_country", "shipping_address.country"),
        ("invalid_service_level", "service_level"),
        ("missing_payment", "payment"),
    ]
    assert [(r.code, r.field) for r in first.reasons] == expected
    assert first == second


def test_amount_cross_checks_run_alongside_other_problems() -> None:
    data = valid()
    data["customer"]["customer_id"] = ""
    data["total_minor"] = 1

    codes = [r.code for r in rejected(data).reasons]

    assert codes == ["missing_customer", "total_mismatch"]


# --- state machine ---

ALLOWED = [(current, new) for current, targets in TRANSITIONS.items() for new in targets]


def test_transition_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    assert len(ALLOWED) == 15  # picking → cancelled: the system, when nothing can ship


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_allowed_transitions_pass(current: OrderStatus, new: OrderStatus) -> None:
    assert transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.PLACED, S.PICKING),
        (S.PLACED, S.SHIPPED),
        (S.PLACED, S.PLACED),
        (S.AWAITING_REVIEW, S.PICKING),
        (S.CONFIRMED, S.SHIPPED),
        (S.CONFIRMED, S.AWAITING_REVIEW),
        (S.PACKED, S.CANCELLED),
        (S.PACKED, S.DELIVERED),
        (S.SHIPPED, S.PACKED),
        (S.SHIPPED, S.COMPLETED),
        (S.DELIVERY_EXCEPTION, S.COMPLETED),
        (S.DELIVERED, S.SHIPPED),
        (S.REJECTED, S.PLACED),
        (S.CANCELLED, S.CONFIRMED),
        (S.COMPLETED, S.DELIVERED),
    ],
)
def test_illegal_transitions_raise(current: OrderStatus, new: OrderStatus) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current} to {new}"):
        transition(current, new)


def test_terminal_states_have_no_exits() -> None:
    assert frozenset({S.REJECTED, S.CANCELLED, S.COMPLETED}) == TERMINAL
    for status in TERMINAL:
        for new in OrderStatus:
            with pytest.raises(IllegalTransition):
                transition(status, new)


def test_can_cancel_exactly_before_picking() -> None:
    cancellable = {s for s in OrderStatus if can_cancel(s)}

    assert cancellable == {S.PLACED, S.AWAITING_REVIEW, S.CONFIRMED}
    for status in cancellable:
        assert transition(status, S.CANCELLED) is S.CANCELLED


def test_the_same_reference_with_another_body_is_a_conflict_not_a_resubmission() -> None:
    placed = SubmitOrder.model_validate(valid())
    sent_again = SubmitOrder.model_validate({**valid(), "submitted_at": "2026-01-02T00:00:00Z"})
    changed = valid()
    changed["lines"][0]["quantity"] = -1
    order_id = order_id_for(placed.storefront_id, placed.storefront_reference)

    assert reference_conflict(placed, placed, order_id) is None
    assert reference_conflict(placed, sent_again, order_id) is None  # only when it was sent
    conflict = reference_conflict(placed, SubmitOrder.model_validate(changed), order_id)
    assert conflict is not None
    assert (conflict.code, conflict.field) == (REFERENCE_CONFLICT, "storefront_reference")
    assert order_id in conflict.message
