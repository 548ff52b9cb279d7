"""Allocation rules (services/inventory/domain.py): nearest warehouse first, split,
backorder with a restock date, all or nothing, safety stock. No I/O."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.inventory.domain import (
    Failed,
    Incoming,
    Line,
    Network,
    Reserved,
    ShipTo,
    Sku,
    StockLevel,
    Warehouse,
    allocate,
    restock_date,
)
from shared.schemas.events.inventory import Allocation, BackorderedLine

TODAY = date(2025, 3, 1)
LON = Warehouse("WH-LON", "London", "GB")
BER = Warehouse("WH-BER", "Berlin", "DE")
NJ = Warehouse("WH-NJ", "New Jersey", "US-NJ")
CA = Warehouse("WH-CA", "California", "US-CA")
NETWORK = Network(
    [NJ, BER, LON, CA],
    {"GB": ["DE", "US"], "US": ["US-NJ", "GB", "DE"], "*": ["DE", "GB", "US"]},
)
SKUS = {
    "MUG": Sku("MUG"),
    "TEE": Sku("TEE"),
    "HOODIE": Sku("HOODIE", backorderable=True),
    "CAP": Sku("CAP", backorderable=True, discontinued=True),
}
GB = ShipTo("GB")


def stock(*rows: tuple[str, str, int] | tuple[str, str, int, int, int]) -> list[StockLevel]:
    return [StockLevel(*row) for row in rows]


def reserve(lines: list[Line], ship_to: ShipTo = GB, **kwargs: object) -> Reserved | Failed:
    kwargs.setdefault("network", NETWORK)
    kwargs.setdefault("skus", SKUS)
    return allocate(lines, ship_to, today=TODAY, **kwargs)  # type: ignore[arg-type]


def held(result: Reserved | Failed) -> list[tuple[str, str, int]]:
    assert isinstance(result, Reserved), result
    return [(a.line_id, a.warehouse_id, a.quantity) for a in result.allocations]


# --- nearest warehouse ---


def test_the_whole_order_comes_from_the_nearest_warehouse_that_has_it_all() -> None:
    levels = stock(
        ("MUG", "WH-LON", 5), ("TEE", "WH-LON", 5),
        ("MUG", "WH-BER", 9), ("TEE", "WH-BER", 9),
        ("MUG", "WH-NJ", 9), ("TEE", "WH-NJ", 9),
    )  # fmt: skip
    lines = [Line("1", "MUG", 2), Line("2", "TEE", 1)]
    assert held(reserve(lines, GB, stock=levels)) == [("1", "WH-LON", 2), ("2", "WH-LON", 1)]
    assert held(reserve(lines, ShipTo("US"), stock=levels)) == [
        ("1", "WH-NJ", 2),
        ("2", "WH-NJ", 1),
    ]
    # nobody configured for Spain: the '*' order says Berlin first
    assert held(reserve(lines, ShipTo("ES"), stock=levels)) == [
        ("1", "WH-BER", 2),
        ("2", "WH-BER", 1),
    ]


def test_a_single_warehouse_further_away_beats_a_split_nearby() -> None:
    levels = stock(
        ("MUG", "WH-LON", 5), ("TEE", "WH-LON", 0),
        ("MUG", "WH-BER", 5), ("TEE", "WH-BER", 5),
    )  # fmt: skip
    lines = [Line("1", "MUG", 2), Line("2", "TEE", 1)]
    assert held(reserve(lines, stock=levels)) == [("1", "WH-BER", 2), ("2", "WH-BER", 1)]


def test_ranking_same_subdivision_then_country_then_configured_order() -> None:
    assert [w.warehouse_id for w in NETWORK.ranked(ShipTo("US", "CA"))] == [
        "WH-CA",  # same subdivision
        "WH-NJ",  # same country
        "WH-LON",  # configured for US: GB before DE
        "WH-BER",
    ]
    # within a country, the configured order decides (US-NJ before US-CA)
    assert [w.warehouse_id for w in NETWORK.ranked(ShipTo("US"))][:2] == ["WH-NJ", "WH-CA"]
    assert NETWORK.ranked(ShipTo("US", "us-ca"))[0].warehouse_id == "WH-CA"
    assert [w.warehouse_id for w in NETWORK.ranked(GB)] == ["WH-LON", "WH-BER", "WH-CA", "WH-NJ"]
    # no configuration at all: same country first, then by warehouse id
    bare = Network([NJ, LON, BER])
    assert [w.warehouse_id for w in bare.ranked(ShipTo("DE"))] == ["WH-BER", "WH-LON", "WH-NJ"]


# --- split ---


def test_split_across_warehouses_when_no_single_one_can_ship_everything() -> None:
    levels = stock(
        ("MUG", "WH-LON", 3), ("TEE", "WH-LON", 0),
        ("MUG", "WH-BER", 1), ("TEE", "WH-BER", 4),
        ("MUG", "WH-NJ", 10),
    )  # fmt: skip
    result = reserve([Line("1", "MUG", 5), Line("2", "TEE", 2)], stock=levels)
    # line by line, nearest first: 3 from London, 1 from Berlin, the last from New Jersey
    assert held(result) == [
        ("1", "WH-LON", 3),
        ("1", "WH-BER", 1),
        ("1", "WH-NJ", 1),
        ("2", "WH-BER", 2),
    ]
    assert isinstance(result, Reserved) and result.backordered == []


def test_two_lines_of_one_sku_do_not_count_the_same_units_twice() -> None:
    levels = stock(("MUG", "WH-LON", 3), ("MUG", "WH-BER", 3))
    result = reserve([Line("1", "MUG", 2), Line("2", "MUG", 2)], stock=levels)
    assert held(result) == [("1", "WH-LON", 2), ("2", "WH-LON", 1), ("2", "WH-BER", 1)]


# --- all or nothing ---


def test_not_enough_anywhere_fails_with_a_reason_per_sku_and_holds_nothing() -> None:
    levels = stock(
        ("MUG", "WH-LON", 2), ("MUG", "WH-BER", 1),
        ("TEE", "WH-LON", 9),
    )  # fmt: skip
    result = reserve([Line("1", "TEE", 1), Line("2", "MUG", 5), Line("3", "NOPE", 1)], stock=levels)
    assert isinstance(result, Failed)
    by_sku = {s.sku: s for s in result.shortages}
    assert set(by_sku) == {"MUG", "NOPE"}  # TEE was fine, but nothing is held for it either
    assert (by_sku["MUG"].requested, by_sku["MUG"].available) == (5, 3)
    assert by_sku["MUG"].code == "not_backorderable"
    assert (by_sku["NOPE"].code, by_sku["NOPE"].available) == ("unknown_sku", 0)


def test_nothing_at_all_is_out_of_stock() -> None:
    result = reserve([Line("1", "MUG", 1)], stock=stock(("MUG", "WH-LON", 0)))
    assert isinstance(result, Failed)
    [shortage] = result.shortages
    assert (shortage.code, shortage.requested, shortage.available) == ("out_of_stock", 1, 0)


def test_a_discontinued_sku_sells_what_is_left_but_is_never_backordered() -> None:
    levels = stock(("CAP", "WH-LON", 2))
    assert held(reserve([Line("1", "CAP", 2)], stock=levels)) == [("1", "WH-LON", 2)]
    result = reserve([Line("1", "CAP", 3)], stock=levels)
    assert isinstance(result, Failed)
    assert [(s.code, s.available) for s in result.shortages] == [("discontinued", 2)]


# --- backorders ---


def test_backorderable_units_missing_are_backordered_with_the_expected_restock_date() -> None:
    levels = stock(("HOODIE", "WH-LON", 1), ("MUG", "WH-LON", 5))
    incoming = [
        Incoming("HOODIE", "WH-BER", 3, TODAY + timedelta(days=21)),
        Incoming("HOODIE", "WH-LON", 2, TODAY + timedelta(days=14)),
    ]
    result = reserve([Line("1", "MUG", 1), Line("2", "HOODIE", 4)], stock=levels, incoming=incoming)
    assert isinstance(result, Reserved)
    assert held(result) == [("1", "WH-LON", 1), ("2", "WH-LON", 1)]
    # 3 missing: the receipt in 14 days brings 2, the one in 21 days the third
    assert result.backordered == [
        BackorderedLine(
            line_id="2", sku="HOODIE", quantity=3, expected_restock_date=TODAY + timedelta(21)
        )
    ]


def test_earlier_backorders_come_first_for_incoming_stock() -> None:
    incoming = [Incoming("HOODIE", "WH-LON", 5, TODAY + timedelta(days=7))]
    first = reserve([Line("1", "HOODIE", 2)], stock=[], incoming=incoming, waiting={})
    later = reserve([Line("1", "HOODIE", 2)], stock=[], incoming=incoming, waiting={"HOODIE": 4})
    assert isinstance(first, Reserved) and isinstance(later, Reserved)
    assert first.backordered[0].expected_restock_date == TODAY + timedelta(days=7)
    assert later.backordered[0].expected_restock_date is None  # 4 + 2 > 5 on order
    assert later.allocations == []


def test_restock_date_is_cumulative_and_an_overdue_receipt_means_today() -> None:
    receipts = [
        Incoming("X", "W", 2, TODAY + timedelta(days=3)),
        Incoming("X", "W", 2, TODAY - timedelta(days=2)),  # late
    ]
    assert restock_date(receipts, already_waiting=0, needed=2, today=TODAY) == TODAY
    assert restock_date(receipts, already_waiting=1, needed=2, today=TODAY) == TODAY + timedelta(3)
    assert restock_date(receipts, already_waiting=0, needed=5, today=TODAY) is None
    assert restock_date([], already_waiting=0, needed=1, today=TODAY) is None


def test_a_backordered_sku_does_not_make_the_rest_of_the_order_fail() -> None:
    result = reserve(
        [Line("1", "MUG", 1), Line("2", "HOODIE", 2)],
        stock=stock(("MUG", "WH-BER", 1)),
    )
    assert isinstance(result, Reserved)
    assert held(result) == [("1", "WH-BER", 1)]
    assert [(b.line_id, b.quantity, b.expected_restock_date) for b in result.backordered] == [
        ("2", 2, None)
    ]


# --- safety stock ---


def test_safety_stock_is_never_promised() -> None:
    levels = [
        StockLevel("MUG", "WH-LON", on_hand=10, reserved=3, safety_stock=5),  # 2 available
        StockLevel("MUG", "WH-BER", on_hand=4, reserved=0, safety_stock=4),  # 0 available
    ]
    assert [level.available for level in levels] == [2, 0]
    assert held(reserve([Line("1", "MUG", 2)], stock=levels)) == [("1", "WH-LON", 2)]
    result = reserve([Line("1", "MUG", 3)], stock=levels)
    assert isinstance(result, Failed)
    assert [(s.requested, s.available) for s in result.shortages] == [(3, 2)]


def test_below_safety_level_nothing_is_available() -> None:
    assert StockLevel("MUG", "WH-LON", on_hand=2, reserved=0, safety_stock=5).available == 0


@pytest.mark.parametrize("quantity", [1, 7, 8])
def test_allocations_never_exceed_availability(quantity: int) -> None:
    levels = stock(("MUG", "WH-LON", 4, 1, 1), ("MUG", "WH-BER", 6, 0, 1))  # 2 + 5 available
    result = reserve([Line("1", "MUG", quantity)], stock=levels)
    if quantity > 7:
        assert isinstance(result, Failed)
        return
    assert isinstance(result, Reserved)
    assert sum(a.quantity for a in result.allocations) == quantity
    by_row = {(a.sku, a.warehouse_id): a.quantity for a in result.allocations}
    for level in levels:
        assert by_row.get(level.key, 0) <= level.available
    assert all(isinstance(a, Allocation) for a in result.allocations)
