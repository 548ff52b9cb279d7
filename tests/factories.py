"""Test data: storefront submissions, valid unless told otherwise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from shared.schemas.common import Address, Amounts, Customer, Money, OrderLine
from shared.schemas.events.inventory import (
    Allocation,
    BackorderedLine,
    InventoryReservationFailed,
    InventoryReserved,
    SkuShortage,
    StockLevelChanged,
)
from shared.schemas.events.order import OrderPlaced, PaymentInstrument, SubmitOrder
from shared.schemas.events.payment import PaymentAuthorized, PaymentDeclined
from shared.schemas.events.risk import RiskAssessed


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


# --- verdicts of the other stages, as their services would publish them ---


def authorized(order_id: str) -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id=order_id,
        payment_id=f"pay-{order_id}",
        amount=Money(amount_minor=5000, currency="EUR"),
        occurred_at=datetime.now(UTC),
        authorization_id=f"auth-{order_id}",
        gateway_reference="sandbox",
    )


def declined(order_id: str) -> PaymentDeclined:
    return PaymentDeclined(
        order_id=order_id,
        payment_id=f"pay-{order_id}",
        amount=Money(amount_minor=5000, currency="EUR"),
        occurred_at=datetime.now(UTC),
        code="insufficient_funds",
    )


def reserved(order_id: str, *, backordered_until: date | None = None) -> InventoryReserved:
    backordered = (
        [
            BackorderedLine(
                line_id="2", sku="TEE-M", quantity=1, expected_restock_date=backordered_until
            )
        ]
        if backordered_until
        else []
    )
    return InventoryReserved(
        order_id=order_id,
        reservation_id=f"res-{order_id}",
        occurred_at=datetime.now(UTC),
        allocations=[
            Allocation(line_id="1", sku="MUG-BLUE", warehouse_id="wh-london", quantity=2),
            *(
                []
                if backordered
                else [Allocation(line_id="2", sku="TEE-M", warehouse_id="wh-leeds", quantity=1)]
            ),
        ],
        backordered=backordered,
    )


def out_of_stock(order_id: str) -> InventoryReservationFailed:
    shortage = SkuShortage(sku="TEE-M", requested=1, available=0, code="out_of_stock")
    return InventoryReservationFailed(
        order_id=order_id, shortages=[shortage], occurred_at=datetime.now(UTC)
    )


def risk(order_id: str, verdict: Literal["pass", "review", "reject"] = "pass") -> RiskAssessed:
    return RiskAssessed(
        order_id=order_id,
        assessment_id=f"risk-{order_id}",
        verdict=verdict,
        score=10,
        occurred_at=datetime.now(UTC),
    )


def stock_level(sku: str, warehouse: str, *, available: int, version: int) -> StockLevelChanged:
    return StockLevelChanged(
        sku=sku,
        warehouse_id=warehouse,
        on_hand=available + 5,
        reserved=5,
        safety_stock=0,
        available=available,
        backorderable=False,
        version=version,
        occurred_at=datetime.now(UTC),
    )


def placed_event(
    order_id: str,
    lines: list[tuple[str, int]],
    *,
    unit_price_minor: int = 1000,
    token: str | None = "tok_approved",
    customer_id: str | None = None,
    country: str = "GB",
    region: str | None = None,
) -> OrderPlaced:
    """``order.placed.v1`` as the order service emits it: (sku, quantity) lines at one
    price, no shipping, tax or discount, so the total is the subtotal."""
    order_lines = [
        OrderLine(
            line_id=str(n),
            sku=sku,
            quantity=quantity,
            unit_price_minor=unit_price_minor,
            line_total_minor=unit_price_minor * quantity,
        )
        for n, (sku, quantity) in enumerate(lines, start=1)
    ]
    subtotal = sum(line.line_total_minor for line in order_lines)
    return OrderPlaced(
        order_id=order_id,
        order_version=1,
        occurred_at=datetime.now(UTC),
        storefront_id="test-shop",
        storefront_reference=order_id,
        customer=Customer(customer_id=customer_id or f"cust-{order_id}", email="ada@example.com"),
        lines=order_lines,
        currency="EUR",
        amounts=Amounts(
            subtotal_minor=subtotal,
            shipping_minor=0,
            tax_minor=0,
            discount_minor=0,
            total_minor=subtotal,
        ),
        shipping_address=Address(
            name="Ada",
            line1="1 Main St",
            city="London",
            postal_code="SW1",
            country=country,
            region=region,
        ),
        service_level="standard",
        payment=PaymentInstrument(token=token) if token is not None else None,
    )
