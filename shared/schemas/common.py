"""Value types shared by many events. Money is always integer minor units + ISO 4217."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
MinorUnits = Annotated[int, Field(ge=0, description="amount in the currency's minor unit")]
Quantity = Annotated[int, Field(gt=0)]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Money(Value):
    amount_minor: MinorUnits
    currency: CurrencyCode


class Address(Value):
    name: str
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: CountryCode


class Customer(Value):
    customer_id: str
    email: str
    name: str | None = None


class OrderLine(Value):
    line_id: str
    sku: str
    quantity: Quantity
    unit_price_minor: MinorUnits
    line_total_minor: MinorUnits


class Amounts(Value):
    """All in the order's currency, minor units; total = subtotal + shipping + tax - discount."""

    subtotal_minor: MinorUnits
    shipping_minor: MinorUnits
    tax_minor: MinorUnits
    discount_minor: MinorUnits
    total_minor: MinorUnits


class Reason(Value):
    """A machine-readable reason (``code``) with the field it concerns and a message."""

    code: str
    message: str
    field: str | None = None
