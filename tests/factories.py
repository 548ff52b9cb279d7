"""Test data: storefront submissions, valid unless told otherwise."""

from __future__ import annotations

from typing import Any

from shared.schemas.events.order import SubmitOrder


def submission_body(reference: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "storefront_id": "test-shop",
        "storefront_reference": reference,
        "customer": {"customer_id": f"cust-{reference}", "email": "ada@example.com"},
        "lines": [
            {"sku": "MUG-BLUE", "quantity": 2, "unit_price_minor": 1250},
            {"sku": "TEE-M", "quantity": 1, "unit_price_minor": 2000},
        ],
        "currency": "EUR",
        "shipping_address": {
            "name": "Ada",
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "SW1",
            "country": "GB",
        },
        "shipping_minor": 500,
        "total_minor": 5000,
        "payment": {"method": "card", "token": "tok_approved"},
    }
    body.update(overrides)
    return body


def submission(reference: str, **overrides: Any) -> SubmitOrder:
    return SubmitOrder.model_validate(submission_body(reference, **overrides))
