"""The tracking view only moves forward: stale and repeated events change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.portal.domain import STATUS_BY_EVENT, apply
from shared.schemas import all_models
from shared.schemas.common import Amounts, Customer, Reason
from shared.schemas.events.order import OrderCancelled, OrderConfirmed, OrderPlaced, OrderRejected

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def placed() -> OrderPlaced:
    return OrderPlaced(
        order_id="o-1",
        order_version=1,
        occurred_at=T0,
        storefront_id="shop",
        storefront_reference="R-1",
        customer=Customer(customer_id="c-1", email="c@example.com"),
        lines=[],
        currency="EUR",
        amounts=Amounts(
            subtotal_minor=0, shipping_minor=0, tax_minor=0, discount_minor=0, total_minor=0
        ),
        shipping_address={
            "name": "A",
            "line1": "1",
            "city": "X",
            "postal_code": "1",
            "country": "GB",
        },
        service_level="standard",
    )


def confirmed(version: int = 2) -> OrderConfirmed:
    return OrderConfirmed(
        order_id="o-1",
        order_version=version,
        occurred_at=T0 + timedelta(seconds=version),
        authorization_id="auth",
        reservation_id="res",
    )


def test_placed_creates_the_view() -> None:
    result = apply(None, placed())
    assert result is not None
    view, entry = result
    assert (view.status, view.version, view.customer_id, view.currency) == (
        "placed",
        1,
        "c-1",
        "EUR",
    )
    assert (entry.version, entry.event_type) == (1, "order.placed.v1")


def test_newer_event_advances_and_keeps_details() -> None:
    view, _ = apply(None, placed()) or (None, None)
    assert view is not None
    after = apply(view, confirmed())
    assert after is not None
    assert (after[0].status, after[0].version, after[0].customer_id) == ("confirmed", 2, "c-1")


def test_repeated_and_stale_events_are_ignored() -> None:
    view, _ = apply(None, placed()) or (None, None)
    assert view is not None
    view2, _ = apply(view, confirmed()) or (None, None)
    assert view2 is not None
    assert apply(view2, confirmed()) is None  # the same version again
    assert apply(view2, placed()) is None  # an older version


def test_reasons_are_kept_from_rejections_and_cancellations() -> None:
    reason = Reason(code="total_mismatch", message="m", field="total_minor")
    rejected = OrderRejected(
        order_id="o-2",
        order_version=1,
        occurred_at=T0,
        storefront_id="s",
        storefront_reference="R-2",
        reasons=[reason],
    )
    view, entry = apply(None, rejected) or (None, None)
    assert view is not None and entry is not None
    assert view.status == "rejected" and view.reasons == [reason.model_dump()]
    cancel = OrderCancelled(
        order_id="o-1", order_version=3, occurred_at=T0, reasons=[reason], cancelled_by="system"
    )
    after = apply(None, cancel)
    assert after is not None and after[0].reasons == [reason.model_dump()]


def test_every_order_event_has_a_status() -> None:
    order_events = {
        t for t, m in all_models().items() if t.startswith("order.") and m.KIND == "event"
    }
    assert order_events == set(STATUS_BY_EVENT)
