"""After confirmation: stage reports in any order move the order through its stages in
lifecycle order, once each."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.order.domain import Order, OrderStatus, Progress, record_progress
from services.order.domain.fulfillment import FulfillmentFact
from shared.schemas.common import Money, Reason
from shared.schemas.events.fulfillment import (
    ItemCount,
    Package,
    Packed,
    PickItem,
    PickTaskCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShippedPackage,
    ShortPicked,
)
from shared.schemas.events.payment import PaymentCaptured

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EUR_1 = Money(amount_minor=1, currency="EUR")
ITEM = PickItem(line_id="1", sku="MUG", quantity=2, location="A-01")
BOX = {"box_code": "S", "length_mm": 10, "width_mm": 10, "height_mm": 10, "weight_grams": 5}


def confirmed(*warehouses: str) -> Order:
    return Order(
        order_id="o-1",
        status=OrderStatus.CONFIRMED,
        version=4,
        progress=Progress(warehouses=frozenset(warehouses or ("W1",))),
    )


def task(warehouse: str = "W1") -> PickTaskCreated:
    return PickTaskCreated(
        order_id="o-1", occurred_at=NOW, task_id=f"t-{warehouse}", warehouse_id=warehouse,
        reservation_id="r", items=[ITEM],
    )  # fmt: skip


def packed(warehouse: str = "W1") -> Packed:
    package = Package(
        package_id=f"p-{warehouse}", items=[ItemCount(line_id="1", sku="MUG", quantity=2)], **BOX
    )
    return Packed(
        order_id="o-1", occurred_at=NOW, packing_id=f"k-{warehouse}", warehouse_id=warehouse,
        packages=[package], packer_id="x",
    )  # fmt: skip


def dispatched(warehouse: str = "W1", eta: date = date(2026, 1, 5)) -> ShipmentDispatched:
    package = ShippedPackage(
        package_id=f"p-{warehouse}", tracking_number="T", items=[], **BOX
    )  # fmt: skip
    return ShipmentDispatched(
        order_id="o-1", occurred_at=NOW, shipment_id=f"s-{warehouse}", carrier="c",
        tracking_number="T", warehouse_id=warehouse, service="ground",
        estimated_delivery=eta, packages=[package],
    )  # fmt: skip


def delivered(warehouse: str = "W1") -> ShipmentDelivered:
    return ShipmentDelivered(
        order_id="o-1", occurred_at=NOW, shipment_id=f"s-{warehouse}", carrier="c",
        tracking_number="T",
    )  # fmt: skip


def exception(warehouse: str = "W1") -> ShipmentException:
    return ShipmentException(
        order_id="o-1", occurred_at=NOW, shipment_id=f"s-{warehouse}", carrier="c",
        tracking_number="T", status="delivery_exception",
        reason=Reason(code="nobody_home", message="no one at the address"),
        estimated_delivery=date(2026, 1, 9),
    )  # fmt: skip


def captured() -> PaymentCaptured:
    return PaymentCaptured(
        order_id="o-1", payment_id="p", occurred_at=NOW, amount=EUR_1, authorization_id="a",
        capture_id="c", shipment_id="s-W1", gateway_reference="g",
    )  # fmt: skip


def run(order: Order, facts: list[FulfillmentFact]) -> tuple[Order, list[str]]:
    types: list[str] = []
    for fact in facts:
        advanced = record_progress(order, fact, NOW)
        order = advanced.order
        types += [e.TYPE for e in advanced.events]
    return order, types


LIFECYCLE = [
    "order.picking_started.v1",
    "order.packed.v1",
    "order.shipped.v1",
    "order.delivered.v1",
    "order.completed.v1",
]


def test_one_warehouse_goes_through_every_stage_in_order() -> None:
    order, types = run(confirmed(), [task(), packed(), dispatched(), captured(), delivered()])
    assert types == LIFECYCLE
    assert order.status == OrderStatus.COMPLETED
    assert order.version == 4 + len(LIFECYCLE)


@pytest.mark.parametrize(
    "facts",
    list(itertools.permutations([task(), packed(), dispatched(), captured(), delivered()])),
)
def test_reports_in_any_order_give_the_same_lifecycle(facts: tuple[FulfillmentFact, ...]) -> None:
    order, types = run(confirmed(), list(facts))
    assert types == LIFECYCLE
    assert order.status == OrderStatus.COMPLETED


def test_repeated_reports_change_nothing() -> None:
    facts = [task(), task(), packed(), packed(), dispatched(), dispatched()]
    order, types = run(confirmed(), facts)
    assert types == LIFECYCLE[:3]
    assert run(order, [dispatched()]) == (order, [])


def test_a_split_order_waits_for_every_warehouse() -> None:
    order, types = run(confirmed("W1", "W2"), [task("W1"), packed("W1"), dispatched("W1")])
    assert types == ["order.picking_started.v1"]
    order, types = run(order, [packed("W2")])
    assert types == ["order.packed.v1"]
    order, types = run(order, [dispatched("W2", eta=date(2026, 1, 7)), delivered("W1")])
    assert types == ["order.shipped.v1"]
    assert order.progress.estimated_delivery == date(2026, 1, 7), "the later parcel decides"
    order, types = run(order, [delivered("W2")])
    assert types == ["order.delivered.v1"]


def test_delivered_waits_for_the_capture_to_complete() -> None:
    order, types = run(confirmed(), [task(), packed(), dispatched(), delivered()])
    assert order.status == OrderStatus.DELIVERED
    order, types = run(order, [captured()])
    assert types == ["order.completed.v1"]


def test_a_delivery_exception_is_a_state_and_a_delivery_resolves_it() -> None:
    order, _ = run(confirmed(), [task(), packed(), dispatched()])
    order, types = run(order, [exception()])
    assert types == ["order.delivery_exception.v1"]
    assert order.progress.estimated_delivery == date(2026, 1, 9)
    order, types = run(order, [delivered(), captured()])
    assert types == ["order.delivered.v1", "order.completed.v1"]


def test_an_exception_after_delivery_is_ignored() -> None:
    order, _ = run(confirmed(), [task(), packed(), dispatched(), delivered()])
    order, types = run(order, [exception()])
    assert types == [] and order.status == OrderStatus.DELIVERED


def test_a_short_pick_is_noted_once_and_the_rest_ships() -> None:
    short = ShortPicked(
        order_id="o-1", occurred_at=NOW, task_id="t", warehouse_id="W1", item=ITEM, picked=1,
        picker_id="p",
    )  # fmt: skip
    order, types = run(confirmed(), [task(), short, short, packed()])
    assert types == LIFECYCLE[:2]
    [reason] = order.progress.short_picks
    assert reason.code == "short_pick" and "1 unit(s) of MUG" in reason.message


def test_backordered_lines_hold_delivery() -> None:
    order = replace(confirmed(), progress=replace(confirmed().progress, backorder_pending=True))
    order, _ = run(order, [task(), packed(), dispatched(), delivered(), captured()])
    assert order.status == OrderStatus.SHIPPED


def test_progress_survives_its_json_form() -> None:
    order, _ = run(confirmed("W1", "W2"), [task(), packed(), dispatched(), exception()])
    assert Progress.from_json(order.progress.to_json()) == order.progress
    assert Progress.from_json({}) == Progress()
