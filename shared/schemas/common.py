"""Value types shared by many events. Money is always integer minor units + ISO 4217.

Every string and integer in a contract is one PostgreSQL can store, so data that passes
validation never fails later in a handler: strings are ``Text`` (no NUL character, which
``text`` and ``jsonb`` cannot hold), counts and versions fit an ``integer`` column and
amounts a ``bigint``. Anything else is refused as invalid data (HTTP 422, or the
dead-letter topic with reason ``invalid_data``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

INT32_MAX = 2**31 - 1  # PostgreSQL integer
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # PostgreSQL bigint
NO_NUL = r"^[^\x00]*$"

Text = Annotated[str, Field(pattern=NO_NUL)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
MinorUnits = Annotated[
    int, Field(ge=0, le=INT64_MAX, description="amount in the currency's minor unit")
]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Quantity = Annotated[int, Field(gt=0, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Money(Value):
    amount_minor: MinorUnits
    currency: CurrencyCode


class Address(Value):
    name: Text
    line1: Text
    line2: Text | None = None
    city: Text
    region: Text | None = None
    postal_code: Text
    country: CountryCode


class Customer(Value):
    customer_id: Text
    email: Text
    name: Text | None = None


class OrderLine(Value):
    line_id: Text
    sku: Text
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

    code: Text
    message: Text
    field: Text | None = None
