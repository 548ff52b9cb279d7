"""Test data for the risk service: valid ``order.placed.v1`` events, tweakable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.schemas.events.order import OrderPlaced


def address(country: str = "GB") -> dict[str, Any]:
    return {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": country,
    }


def placed(
    customer_id: str = "cust-1",
    *,
    total_minor: int = 4_500,
    currency: str = "EUR",
    ship_to: str = "GB",
    bill_to: str | None = None,
    occurred_at: datetime | None = None,
    order_id: str | None = None,
) -> OrderPlaced:
    """An ``order.placed.v1``; billing address only when ``bill_to`` is given."""
    order_id = order_id or f"ord-{uuid.uuid4().hex[:12]}"
    return OrderPlaced.model_validate(
        {
            "order_id": order_id,
            "order_version": 1,
            "occurred_at": occurred_at or datetime.now(UTC),
            "storefront_id": "test-shop",
            "storefront_reference": f"ref-{order_id}",
            "customer": {"customer_id": customer_id, "email": "ada@example.com"},
            "lines": [
                {
                    "line_id": "l1",
                    "sku": "MUG-BLUE",
                    "quantity": 1,
                    "unit_price_minor": total_minor,
                    "line_total_minor": total_minor,
                }
            ],
            "currency": currency,
            "amounts": {
                "subtotal_minor": total_minor,
                "shipping_minor": 0,
                "tax_minor": 0,
                "discount_minor": 0,
                "total_minor": total_minor,
            },
            "shipping_address": address(ship_to),
            "billing_address": address(bill_to) if bill_to else None,
            "service_level": "standard",
        }
    )
