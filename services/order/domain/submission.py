"""Order placement rules: validating a storefront submission. Pure: no I/O, no asyncio.

``validate_submission`` turns a storefront's raw ``SubmitOrder`` into either an
``Accepted`` order (typed value objects, ready for ``order.placed.v1``) or a ``Rejected``
one listing every problem as a machine-readable ``Reason`` (see ``REASON_CODES``).
Reason fields are paths into the submission; list indices are zero-based
(``lines[2].sku`` is the third submitted line).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pycountry

from shared.schemas.common import INT64_MAX, Address, Amounts, Customer, OrderLine, Reason
from shared.schemas.events.order import PaymentInstrument, SubmitOrder, SubmittedAddress

# --- order identity ---

# Fixed forever: changing it would give resubmitted orders new ids.
ORDER_NAMESPACE = uuid.UUID("8f0c3a52-6d1e-5b7a-9c4e-2f6a1d0b7e31")


def order_id_for(storefront_id: str, storefront_reference: str) -> str:
    """Deterministic order id: the same storefront reference always yields the same id."""
    # Length prefix keeps the pair unambiguous ("a:b" + "c" differs from "a" + "b:c").
    name = f"{len(storefront_id)}:{storefront_id}:{storefront_reference}"
    return str(uuid.uuid5(ORDER_NAMESPACE, name))


# --- the same reference again ---

REFERENCE_CONFLICT = "reference_conflict"


def reference_conflict(placed: SubmitOrder, again: SubmitOrder, order_id: str) -> Reason | None:
    """Why ``again`` is not a resubmission of ``placed`` (same storefront reference), or None.

    A resubmission carries the same order; only when it was sent (``submitted_at``) may
    differ. Another body under a reference already used is refused, never applied.
    """
    unsent = {"submitted_at": None}
    if placed.model_copy(update=unsent) == again.model_copy(update=unsent):
        return None
    return Reason(
        code=REFERENCE_CONFLICT,
        field="storefront_reference",
        message=f"storefront reference {again.storefront_reference!r} was already submitted "
        f"as order {order_id} with a different body",
    )


# --- submission validation ---

MAX_LINES = 200
MAX_QUANTITY_PER_LINE = 10_000
SERVICE_LEVELS = frozenset({"standard", "express", "overnight"})
ADDRESS_REQUIRED_FIELDS = ("name", "line1", "city", "postal_code")

REASON_CODES: dict[str, str] = {
    "missing_storefront_id": "storefront_id is empty",
    "missing_storefront_reference": "storefront_reference is empty",
    "missing_customer": "customer.customer_id is empty",
    "invalid_email": "customer.email is not a plausible e-mail address",
    "no_lines": "the order has no lines",
    "too_many_lines": f"the order has more than {MAX_LINES} lines (lines are then not checked)",
    "missing_sku": "a line has an empty sku",
    "quantity_not_positive": "a line's quantity is zero or negative",
    "quantity_too_large": f"a line's quantity exceeds {MAX_QUANTITY_PER_LINE}",
    "negative_price": "a line's unit_price_minor is negative",
    "duplicate_sku": "two lines carry the same sku; storefronts must merge them",
    "invalid_currency": "currency is not an upper-case ISO 4217 code",
    "negative_amount": "shipping_minor, tax_minor or discount_minor is negative",
    "discount_exceeds_subtotal": "discount_minor is larger than subtotal + shipping",
    "total_mismatch": "total_minor differs from subtotal + shipping + tax - discount",
    "amount_out_of_range": f"a line total (quantity x unit price) or the subtotal exceeds "
    f"{INT64_MAX}, the largest amount an order can carry",
    "missing_address_field": "a required address field (name, line1, city, postal_code, "
    "country) is empty",
    "invalid_country": "an address country is not an upper-case ISO 3166-1 alpha-2 code",
    "invalid_service_level": f"service_level is not one of {', '.join(sorted(SERVICE_LEVELS))}",
    "missing_payment": "payment is absent or its token is empty",
}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class Accepted:
    order_id: str
    customer: Customer
    lines: list[OrderLine]
    currency: str
    amounts: Amounts
    shipping_address: Address
    billing_address: Address | None
    service_level: str
    payment: PaymentInstrument | None


@dataclass(frozen=True)
class Rejected:
    order_id: str
    reasons: list[Reason]


def _blank(value: str) -> bool:
    return not value.strip()


def _reason(code: str, field: str, message: str) -> Reason:
    assert code in REASON_CODES, code
    return Reason(code=code, field=field, message=message)


def _check_lines(cmd: SubmitOrder) -> list[Reason]:
    if not cmd.lines:
        return [_reason("no_lines", "lines", "at least one line is required")]
    if len(cmd.lines) > MAX_LINES:
        # Not checked line by line: the reason list must stay small enough for an event.
        msg = f"{len(cmd.lines)} lines, at most {MAX_LINES} allowed"
        return [_reason("too_many_lines", "lines", msg)]
    reasons: list[Reason] = []
    first_index: dict[str, int] = {}
    for i, line in enumerate(cmd.lines):
        at = f"lines[{i}]"
        if _blank(line.sku):
            reasons.append(_reason("missing_sku", f"{at}.sku", "sku is required"))
        elif line.sku in first_index:
            msg = f"sku {line.sku!r} already on lines[{first_index[line.sku]}]"
            reasons.append(_reason("duplicate_sku", f"{at}.sku", msg))
        else:
            first_index[line.sku] = i
        if line.quantity <= 0:
            msg = f"quantity must be positive, got {line.quantity}"
            reasons.append(_reason("quantity_not_positive", f"{at}.quantity", msg))
        elif line.quantity > MAX_QUANTITY_PER_LINE:
            msg = f"quantity {line.quantity} exceeds {MAX_QUANTITY_PER_LINE}"
            reasons.append(_reason("quantity_too_large", f"{at}.quantity", msg))
        if line.unit_price_minor < 0:
            msg = f"unit price must not be negative, got {line.unit_price_minor}"
            reasons.append(_reason("negative_price", f"{at}.unit_price_minor", msg))
    return reasons


def _check_amounts(cmd: SubmitOrder, lines_ok: bool) -> list[Reason]:
    reasons: list[Reason] = []
    for name in ("shipping_minor", "tax_minor", "discount_minor"):
        value: int = getattr(cmd, name)
        if value < 0:
            msg = f"{name} must not be negative, got {value}"
            reasons.append(_reason("negative_amount", name, msg))
    if reasons or not lines_ok:
        return reasons  # the subtotal or the parts are meaningless: no cross-checks
    # Each part fits an int64 (the schema's bound), but a line total or their sum may not,
    # and the order's amounts are int64 (PostgreSQL bigint): refused, never overflowing.
    for i, line in enumerate(cmd.lines):
        if (line_total := line.quantity * line.unit_price_minor) > INT64_MAX:
            msg = (
                f"line total {line.quantity} x {line.unit_price_minor} = {line_total}"
                f" exceeds {INT64_MAX}"
            )
            reasons.append(_reason("amount_out_of_range", f"lines[{i}].unit_price_minor", msg))
    subtotal = sum(line.quantity * line.unit_price_minor for line in cmd.lines)
    if not reasons and subtotal > INT64_MAX:
        msg = f"subtotal {subtotal} exceeds {INT64_MAX}"
        reasons.append(_reason("amount_out_of_range", "lines", msg))
    if reasons:
        return reasons  # amounts that cannot be carried: no cross-checks
    if cmd.discount_minor > subtotal + cmd.shipping_minor:
        msg = (
            f"discount {cmd.discount_minor} exceeds subtotal {subtotal}"
            f" + shipping {cmd.shipping_minor}"
        )
        reasons.append(_reason("discount_exceeds_subtotal", "discount_minor", msg))
    expected = subtotal + cmd.shipping_minor + cmd.tax_minor - cmd.discount_minor
    if cmd.total_minor != expected:
        msg = (
            f"expected {expected} (subtotal {subtotal} + shipping {cmd.shipping_minor}"
            f" + tax {cmd.tax_minor} - discount {cmd.discount_minor}),"
            f" given {cmd.total_minor}"
        )
        reasons.append(_reason("total_mismatch", "total_minor", msg))
    return reasons


def _check_address(address: SubmittedAddress, prefix: str) -> list[Reason]:
    reasons: list[Reason] = []
    for name in ADDRESS_REQUIRED_FIELDS:
        if _blank(getattr(address, name)):
            msg = f"{name} is required"
            reasons.append(_reason("missing_address_field", f"{prefix}.{name}", msg))
    country = address.country
    if _blank(country):
        msg = "country is required"
        reasons.append(_reason("missing_address_field", f"{prefix}.country", msg))
    # pycountry matches case-insensitively; Address requires upper case, so check it first.
    elif not _COUNTRY.fullmatch(country) or pycountry.countries.get(alpha_2=country) is None:
        msg = f"{country!r} is not an ISO 3166-1 alpha-2 country code"
        reasons.append(_reason("invalid_country", f"{prefix}.country", msg))
    return reasons


def _problems(cmd: SubmitOrder) -> list[Reason]:
    """Every problem with the submission, in field order."""
    reasons: list[Reason] = []
    if _blank(cmd.storefront_id):
        msg = "storefront_id is required"
        reasons.append(_reason("missing_storefront_id", "storefront_id", msg))
    if _blank(cmd.storefront_reference):
        msg = "storefront_reference is required"
        reasons.append(_reason("missing_storefront_reference", "storefront_reference", msg))
    if _blank(cmd.customer.customer_id):
        msg = "customer_id is required"
        reasons.append(_reason("missing_customer", "customer.customer_id", msg))
    if not _EMAIL.fullmatch(cmd.customer.email):
        msg = f"{cmd.customer.email!r} is not a valid e-mail address"
        reasons.append(_reason("invalid_email", "customer.email", msg))
    line_reasons = _check_lines(cmd)
    reasons += line_reasons
    # pycountry matches case-insensitively; CurrencyCode requires upper case.
    currency = cmd.currency
    if not _CURRENCY.fullmatch(currency) or pycountry.currencies.get(alpha_3=currency) is None:
        msg = f"{currency!r} is not an ISO 4217 currency code"
        reasons.append(_reason("invalid_currency", "currency", msg))
    reasons += _check_amounts(cmd, lines_ok=not line_reasons)
    reasons += _check_address(cmd.shipping_address, "shipping_address")
    if cmd.billing_address is not None:
        reasons += _check_address(cmd.billing_address, "billing_address")
    if cmd.service_level not in SERVICE_LEVELS:
        msg = f"{cmd.service_level!r} is not one of {', '.join(sorted(SERVICE_LEVELS))}"
        reasons.append(_reason("invalid_service_level", "service_level", msg))
    if cmd.payment is None:
        reasons.append(_reason("missing_payment", "payment", "payment is required"))
    elif _blank(cmd.payment.token):
        msg = "payment token is required"
        reasons.append(_reason("missing_payment", "payment.token", msg))
    return reasons


def _address(address: SubmittedAddress) -> Address:
    return Address.model_validate(address.model_dump())


def validate_submission(cmd: SubmitOrder) -> Accepted | Rejected:
    """Accept the submission or reject it with every problem found."""
    order_id = order_id_for(cmd.storefront_id, cmd.storefront_reference)
    reasons = _problems(cmd)
    if reasons:
        return Rejected(order_id=order_id, reasons=reasons)
    # Validation passed, so the value types below cannot raise.
    lines = [
        OrderLine(
            line_id=str(n),
            sku=line.sku,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            line_total_minor=line.quantity * line.unit_price_minor,
        )
        for n, line in enumerate(cmd.lines, start=1)
    ]
    subtotal = sum(line.line_total_minor for line in lines)
    return Accepted(
        order_id=order_id,
        customer=Customer(
            customer_id=cmd.customer.customer_id,
            email=cmd.customer.email,
            name=cmd.customer.name,
        ),
        lines=lines,
        currency=cmd.currency,
        amounts=Amounts(
            subtotal_minor=subtotal,
            shipping_minor=cmd.shipping_minor,
            tax_minor=cmd.tax_minor,
            discount_minor=cmd.discount_minor,
            total_minor=cmd.total_minor,
        ),
        shipping_address=_address(cmd.shipping_address),
        billing_address=_address(cmd.billing_address) if cmd.billing_address else None,
        service_level=cmd.service_level,
        payment=cmd.payment,
    )
