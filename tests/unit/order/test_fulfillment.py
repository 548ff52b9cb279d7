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
    NothingPicked,
    Package,
    Packed,
    PickItem,
    PickTaskCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShippedPackage,
    ShortLine,
    ShortPicked,
)
from shared.schemas.events.inventory import Allocation, BackorderAllocated, BackorderedLine
from shared.schemas.events.order import OrderCancelled
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
        progress=Progress(consignments=frozenset(warehouses or ("W1",))),
    )


def task(warehouse: str = "W1") -> PickTaskCreated:
    return PickTaskCreated(
        order_id="o-1", occurred_at=NOW, task_id=f"t-{warehouse}", warehouse_id=warehouse,
        reservation_id="r", items=[ITEM],
    )  # fmt: skip


def packed(warehouse: str = "W1", backorder_round: str | None = None) -> Packed:
    unit = f"{warehouse}{backorder_round or ''}"
    package = Package(
        package_id=f"p-{unit}", items=[ItemCount(line_id="1", sku="MUG", quantity=2)], **BOX
    )
    return Packed(
        order_id="o-1", occurred_at=NOW, packing_id=f"k-{unit}", warehouse_id=warehouse,
        packages=[package], packer_id="x", backorder_round=backorder_round,
    )  # fmt: skip


def dispatched(
    warehouse: str = "W1", eta: date = date(2026, 1, 5), backorder_round: str | None = None
) -> ShipmentDispatched:
    unit = f"{warehouse}{backorder_round or ''}"
    package = ShippedPackage(package_id=f"p-{unit}", tracking_number="T", items=[], **BOX)
    return ShipmentDispatched(
        order_id="o-1", occurred_at=NOW, shipment_id=f"s-{unit}", carrier="c",
        tracking_number="T", warehouse_id=warehouse, service="ground",
        estimated_delivery=eta, packages=[package], backorder_round=backorder_round,
    )  # fmt: skip


def delivered(warehouse: str = "W1", backorder_round: str | None = None) -> ShipmentDelivered:
    return ShipmentDelivered(
        order_id="o-1", occurred_at=NOW, shipment_id=f"s-{warehouse}{backorder_round or ''}",
        carrier="c", tracking_number="T",
    )  # fmt: skip


def backorder_allocated(
    warehouse: str | None, still_waiting: int = 0, short_pick: tuple[str, str] | None = None
) -> BackorderAllocated:
    """``warehouse``: where units are held now (None: nowhere); ``short_pick``: the
    (task, line) whose missing units these replace."""
    held = (
        [Allocation(line_id="2", sku="HOODIE", warehouse_id=warehouse, quantity=1)]
        if warehouse is not None
        else []
    )
    task, line = short_pick or (None, None)
    return BackorderAllocated(
        order_id="o-1", reservation_id="r", occurred_at=NOW,
        allocations=held,
        still_backordered=[BackorderedLine(line_id="2", sku="HOODIE", quantity=still_waiting)]
        if still_waiting
        else [],
        short_pick_task_id=task, short_pick_line_id=line,
    )  # fmt: skip


def short_picked(task_id: str = "t-W1") -> ShortPicked:
    return ShortPicked(
        order_id="o-1", occurred_at=NOW, task_id=task_id, warehouse_id="W1", item=ITEM,
        picked=1, picker_id="p",
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
    short = short_picked()
    order, types = run(confirmed(), [task(), short, short, packed(), dispatched()])
    assert types == LIFECYCLE[:3]
    [reason] = order.progress.short_picks
    assert reason.code == "short_pick" and "1 unit(s) of MUG" in reason.message


def test_a_short_pick_holds_delivery_until_its_units_are_allocated_again_and_shipped() -> None:
    facts = [task(), short_picked(), packed(), dispatched(), delivered(), captured()]
    order, types = run(confirmed(), facts)
    assert order.status == OrderStatus.SHIPPED, "inventory has not answered the short pick"
    again = backorder_allocated("W2", short_pick=("t-W1", "1"))
    order, types = run(order, [again])
    assert types == [] and f"W2@{again.round_id}" in order.progress.consignments
    unit = ("W2", again.round_id)
    order, types = run(order, [packed(*unit), dispatched(unit[0], backorder_round=unit[1])])
    assert types == []
    order, types = run(order, [delivered(*unit)])
    assert types == ["order.delivered.v1", "order.completed.v1"]


def test_a_short_pick_answered_before_it_is_read_holds_nothing() -> None:
    """Inventory's answer and picking's report come on different topics, in any order."""
    nothing_left = backorder_allocated(None, short_pick=("t-W1", "1"))
    facts = [task(), nothing_left, short_picked(), packed(), dispatched(), delivered()]
    _, types = run(confirmed(), [*facts, captured()])
    assert types == LIFECYCLE, "units nowhere to be had: settled, the line ships short"


def test_each_short_line_is_settled_on_its_own() -> None:
    other_line = backorder_allocated(None, short_pick=("t-W1", "9"))
    facts = [task(), short_picked(), other_line, packed(), dispatched(), delivered()]
    order, _ = run(confirmed(), [*facts, captured()])
    assert order.status == OrderStatus.SHIPPED


def nothing_picked(warehouse: str = "W1", task_id: str = "t-W1") -> NothingPicked:
    return NothingPicked(
        order_id="o-1", occurred_at=NOW, packing_id=f"k-{warehouse}", warehouse_id=warehouse,
        short_picks=[ShortLine(task_id=task_id, line_id="1")],
    )  # fmt: skip


def test_a_warehouse_where_every_unit_was_short_waits_for_inventorys_answer() -> None:
    """Read before the short pick's own report: it still holds the order back."""
    order, types = run(confirmed(), [task(), nothing_picked()])
    assert types == ["order.picking_started.v1"], "nothing packed yet, and an answer pending"
    again = backorder_allocated("W2", short_pick=("t-W1", "1"))
    order, types = run(order, [short_picked(), again])
    assert types == [], "the units held again at W2 are still to be packed"
    unit = ("W2", again.round_id)
    facts = [packed(*unit), dispatched(unit[0], backorder_round=unit[1]), delivered(*unit)]
    order, types = run(order, [*facts, captured()])
    assert types == LIFECYCLE[1:], "W1 had nothing to ship: W2's parcel is the order's"


def test_nothing_picked_in_one_warehouse_does_not_hold_the_others() -> None:
    answer = backorder_allocated(None, 1, short_pick=("t-W2", "1"))
    facts = [task("W1"), task("W2"), packed("W1"), nothing_picked("W2", "t-W2"), answer]
    order, types = run(confirmed("W1", "W2"), [*facts, dispatched("W1")])
    assert types == LIFECYCLE[:3], "W2 has nothing to ship; its units wait on backorder"
    order, types = run(order, [delivered("W1"), captured()])
    assert types == [] and order.progress.backorder_pending


@pytest.mark.parametrize(
    "facts",
    list(
        itertools.permutations(
            [nothing_picked(), short_picked(), backorder_allocated(None, short_pick=("t-W1", "1"))]
        )
    ),
)
def test_an_order_nothing_of_which_could_be_supplied_is_cancelled_by_the_system(
    facts: tuple[FulfillmentFact, ...],
) -> None:
    """Every unit short, and inventory could neither hold others nor backorder them: no
    report still to come can add a parcel, so the order is cancelled (and payment voids)
    rather than shown packed, shipped and delivered with nothing in it."""
    order, events = confirmed(), []
    for fact in [task(), *facts]:
        advanced = record_progress(order, fact, NOW)
        order, events = advanced.order, [*events, *advanced.events]
    assert [e.TYPE for e in events] == ["order.picking_started.v1", "order.cancelled.v1"]
    cancelled = events[-1]
    assert order.status == OrderStatus.CANCELLED
    assert isinstance(cancelled, OrderCancelled) and cancelled.cancelled_by == "system"
    assert [r.code for r in cancelled.reasons] == ["nothing_supplied"]
    assert run(order, [captured()])[1] == [], "closed: nothing follows"


def test_nothing_packed_and_lines_on_backorder_wait_in_picking() -> None:
    """Nothing to pack yet, but the short units wait on backorder: neither packed with no
    parcel nor cancelled; the order moves on once the backordered units are packed."""
    waiting = backorder_allocated(None, still_waiting=1, short_pick=("t-W1", "1"))
    order, types = run(confirmed(), [task(), nothing_picked(), short_picked(), waiting])
    assert types == ["order.picking_started.v1"] and order.status == OrderStatus.PICKING
    served = backorder_allocated("W2")
    unit = ("W2", served.round_id)
    order, types = run(order, [served, packed(*unit)])
    assert types == ["order.packed.v1"]


def test_one_consignment_with_nothing_is_not_cancelled_while_another_is_packed() -> None:
    answer = backorder_allocated(None, short_pick=("t-W2", "1"))
    facts = [task("W1"), task("W2"), nothing_picked("W2", "t-W2"), answer, packed("W1")]
    _, types = run(confirmed("W1", "W2"), facts)
    assert types == LIFECYCLE[:2], "W1's parcel is the order's: packed, not cancelled"


def test_backordered_lines_hold_delivery() -> None:
    order = replace(confirmed(), progress=replace(confirmed().progress, backorder_pending=True))
    order, _ = run(order, [task(), packed(), dispatched(), delivered(), captured()])
    assert order.status == OrderStatus.SHIPPED


def backordered(order: Order) -> Order:
    return replace(order, progress=replace(order.progress, backorder_pending=True))


def test_a_backorder_round_at_a_warehouse_that_shipped_is_a_shipment_of_its_own() -> None:
    order, types = run(backordered(confirmed()), [task(), packed(), dispatched(), delivered()])
    assert types == LIFECYCLE[:3] and order.status == OrderStatus.SHIPPED
    served = backorder_allocated("W1")
    order, types = run(order, [served, captured()])
    assert types == [], "the first parcel's delivery is not the backordered units'"
    round_ = served.round_id
    order, types = run(order, [packed("W1", round_), dispatched("W1", backorder_round=round_)])
    assert types == [] and order.status == OrderStatus.SHIPPED
    order, types = run(order, [delivered("W1", round_)])
    assert types == ["order.delivered.v1", "order.completed.v1"]


def test_a_backorder_round_served_before_packing_waits_for_its_own_packing() -> None:
    served = backorder_allocated("W1")
    order, types = run(backordered(confirmed()), [task(), served, packed()])
    assert types == ["order.picking_started.v1"], "the round's units are not packed yet"
    order, types = run(order, [packed("W1", served.round_id)])
    assert types == ["order.packed.v1"]
    assert order.progress.consignments == {"W1", f"W1@{served.round_id}"}


def test_each_backorder_round_is_waited_for() -> None:
    first, second = backorder_allocated("W2", still_waiting=1), backorder_allocated("W2")
    assert first.round_id != second.round_id
    order, _ = run(backordered(confirmed()), [task(), packed(), dispatched(), first])
    assert order.progress.backorder_pending, "one unit still waits"
    facts = [packed("W2", first.round_id), dispatched("W2", backorder_round=first.round_id)]
    order, _ = run(order, [*facts, second, delivered(), delivered("W2", first.round_id)])
    assert order.status == OrderStatus.SHIPPED, "the second round has not shipped"


def test_progress_stored_before_rounds_reads_its_warehouses_as_consignments() -> None:
    assert Progress.from_json({"warehouses": ["W1", "W2"]}).consignments == {"W1", "W2"}


def test_progress_survives_its_json_form() -> None:
    facts = [task(), short_picked(), packed(), dispatched(), exception()]
    order, _ = run(confirmed("W1", "W2"), [*facts, backorder_allocated("W2", 1, ("t", "1"))])
    assert Progress.from_json(order.progress.to_json()) == order.progress
    assert Progress.from_json({}) == Progress()
