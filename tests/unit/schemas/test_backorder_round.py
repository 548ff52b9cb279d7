"""A backorder allocation round's id (``BackorderAllocated.round_id``): from the event's
content, so every service names a round alike and a re-emitted event is the same round;
and the same strings picking stored before the contract had the property, so a replayed
event finds the rounds and tasks made from it."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.schemas.events.inventory import Allocation, BackorderAllocated, BackorderedLine

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

Line = tuple[str, str, str, int]  # (line id, SKU, warehouse, quantity)


def allocated(lines: list[Line], still: int = 0, *, order_id: str = "o1") -> BackorderAllocated:
    return BackorderAllocated(
        order_id=order_id,
        reservation_id=f"res-{order_id}",
        occurred_at=NOW,
        allocations=[
            Allocation(line_id=line, sku=sku, warehouse_id=wh, quantity=qty)
            for line, sku, wh, qty in lines
        ],
        still_backordered=(
            [BackorderedLine(line_id="9", sku="CAP-RED", quantity=still)] if still else []
        ),
    )


HOODIES = [("2", "HOODIE-L-GREY", "WH-LON", 2)]
TWO_WAREHOUSES = [("2", "HOODIE-L-GREY", "WH-LON", 2), ("1", "MUG-BLUE", "WH-BER", 1)]


def test_the_ids_are_those_picking_computed_and_stored_before() -> None:
    # computed by picking's former domain.backorder_round_id on the same content
    assert allocated(HOODIES).round_id == "backorder:acc8fed87c102bac50bc"
    assert allocated(TWO_WAREHOUSES, still=3).round_id == "backorder:6f93739f8f096e166c6a"


def test_a_round_is_named_by_its_content_whatever_the_event_or_line_order() -> None:
    first = allocated(TWO_WAREHOUSES, still=3)
    reissued = allocated(list(reversed(TWO_WAREHOUSES)), still=3).model_copy(
        update={"occurred_at": NOW.replace(hour=13)}
    )
    assert reissued.round_id == first.round_id
    assert first.round_id.startswith("backorder:")


def test_another_round_gets_another_id() -> None:
    # the same allocation while more units still wait is another round
    assert allocated(HOODIES, still=1).round_id != allocated(HOODIES).round_id
    moved = [("2", "HOODIE-L-GREY", "WH-BER", 2)]
    assert allocated(moved).round_id != allocated(HOODIES).round_id
