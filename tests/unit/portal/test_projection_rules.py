"""The tracking view only moves forward: stale and repeated events change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.portal.domain import STATUS_BY_EVENT, apply, apply_level, summarize
from shared.schemas import all_models
from shared.schemas.common import Amounts, Customer, Money, Reason
from shared.schemas.events.inventory import (
    Allocation,
    InventoryReleased,
    InventoryReserved,
    StockLevelChanged,
)
from shared.schemas.events.order import OrderCancelled, OrderConfirmed, OrderPlaced, OrderRejected
from shared.schemas.events.payment import PaymentAuthorized

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
    result = apply(None, placed(), "e")
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
    view, _ = apply(None, placed(), "e") or (None, None)
    assert view is not None
    after = apply(view, confirmed(), "e")
    assert after is not None
    assert (after[0].status, after[0].version, after[0].customer_id) == ("confirmed", 2, "c-1")


def test_repeated_and_stale_events_are_ignored() -> None:
    view, _ = apply(None, placed(), "e") or (None, None)
    assert view is not None
    view2, _ = apply(view, confirmed(), "e") or (None, None)
    assert view2 is not None
    assert apply(view2, confirmed(), "e") is None  # the same version again
    assert apply(view2, placed(), "e") is None  # an older version


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
    view, entry = apply(None, rejected, "e") or (None, None)
    assert view is not None and entry is not None
    assert view.status == "rejected" and view.reasons == [reason.model_dump()]
    cancel = OrderCancelled(
        order_id="o-1", order_version=3, occurred_at=T0, reasons=[reason], cancelled_by="system"
    )
    after = apply(None, cancel, "e")
    assert after is not None and after[0].reasons == [reason.model_dump()]


def test_every_order_event_has_a_status() -> None:
    order_events = {
        t for t, m in all_models().items() if t.startswith("order.") and m.KIND == "event"
    }
    assert order_events == set(STATUS_BY_EVENT)


def authorized_payment() -> PaymentAuthorized:
    return PaymentAuthorized(
        order_id="o-1", payment_id="p", amount=Money(amount_minor=5, currency="EUR"),
        occurred_at=T0 + timedelta(seconds=5), authorization_id="a", gateway_reference="g",
    )  # fmt: skip


def test_payment_before_placement_starts_a_skeleton_the_order_event_fills() -> None:
    early = apply(None, authorized_payment(), "pay-1")
    assert early is not None
    view, entry = early
    assert (view.version, view.payment_status, entry.event_type) == (
        0,
        "authorized",
        "payment.authorized.v1",
    )
    later = apply(view, placed(), "e")
    assert later is not None
    assert (later[0].version, later[0].payment_status, later[0].customer_id) == (
        1,
        "authorized",
        "c-1",
    )
    assert later[0].updated_at == T0 + timedelta(seconds=5), "updated_at never goes back"


def test_reservations_per_warehouse_and_release() -> None:
    view, _ = apply(None, placed(), "e") or (None, None)
    assert view is not None
    allocation = Allocation(line_id="1", sku="S", warehouse_id="w-east", quantity=2)
    reserve = InventoryReserved(
        order_id="o-1", reservation_id="r", occurred_at=T0, allocations=[allocation]
    )
    held = apply(view, reserve, "inv-1")
    assert held is not None
    assert (
        held[0].stock_status == "reserved" and held[0].reservations[0]["warehouse_id"] == "w-east"
    )
    release = InventoryReleased(
        order_id="o-1", reservation_id="r", occurred_at=T0, allocations=[allocation], reason="x"
    )
    released = apply(held[0], release, "inv-2")
    assert released is not None
    assert released[0].stock_status == "released" and released[0].reservations == []


def level(version: int, available: int, warehouse: str = "w1") -> StockLevelChanged:
    return StockLevelChanged(
        sku="S", warehouse_id=warehouse, on_hand=10, reserved=10 - available, safety_stock=0,
        available=available, backorderable=False, version=version, occurred_at=T0,
    )  # fmt: skip


def test_stock_levels_only_move_forward_and_sum_over_warehouses() -> None:
    first = apply_level(None, level(1, 10))
    assert first is not None
    second = apply_level(first, level(2, 7))
    assert second is not None and second.available == 7
    assert apply_level(second, level(1, 10)) is None
    other = apply_level(None, level(1, 4, "w2"))
    assert other is not None
    total = summarize("S", [second, other])
    assert (total.available, total.on_hand) == (11, 20)
    assert [w.warehouse_id for w in total.warehouses] == ["w1", "w2"]
