"""Short picks (services/inventory/domain/short_picks.py): the missing units are written
off, then allocated again by the placement rules, backordered, or not supplied; the
reservation is committed only once nothing is outstanding. No I/O."""

from __future__ import annotations

from datetime import date, timedelta

from services.inventory.domain import (
    Held,
    Incoming,
    LevelSnapshot,
    Line,
    Network,
    Reservation,
    ShipTo,
    ShortPick,
    Sku,
    StockBook,
    StockLevel,
    Warehouse,
    replace_units,
    settle_short_pick,
    to_commit,
    write_off,
)
from shared.schemas.events.inventory import Allocation, BackorderedLine

TODAY = date(2025, 3, 1)
NETWORK = Network(
    [Warehouse("WH-LON", "London", "GB"), Warehouse("WH-BER", "Berlin", "DE")],
    {"GB": ["DE"], "*": ["DE", "GB"]},
)
GB = ShipTo("GB")
MUG = Sku("MUG")
HOODIE = Sku("HOODIE", backorderable=True)
CAP = Sku("CAP", backorderable=True, discontinued=True)


def short(missing: int, *, expected: int = 4, line: str = "1", sku: str = "MUG") -> ShortPick:
    return ShortPick("o-1", "T-1", "WH-LON", line, sku, expected, expected - missing)


def level(
    sku: str, warehouse_id: str, on_hand: int, reserved: int = 0, safety: int = 0
) -> StockLevel:
    return StockLevel(sku, warehouse_id, on_hand, reserved, safety)


def book(*levels: StockLevel) -> StockBook:
    return StockBook(LevelSnapshot(lvl, 1, False, None) for lvl in levels)


def held_at(result: list[Allocation]) -> list[tuple[str, int]]:
    return [(a.warehouse_id, a.quantity) for a in result]


# --- write-off ---


def test_the_missing_units_are_written_off_where_the_line_is_held() -> None:
    held = [
        Held("1", "MUG", "WH-BER", 4),
        Held("1", "MUG", "WH-LON", 4),
        Held("2", "MUG", "WH-LON", 9),
    ]
    written = write_off(held, short(3))
    assert written == Allocation(line_id="1", sku="MUG", warehouse_id="WH-LON", quantity=3)


def test_a_write_off_takes_at_most_the_units_still_held_there() -> None:
    # two of the four shipped already (the dispatch was handled first): two are left
    assert write_off([Held("1", "MUG", "WH-LON", 4, committed=2)], short(3)) == Allocation(
        line_id="1", sku="MUG", warehouse_id="WH-LON", quantity=2
    )
    assert write_off([Held("1", "MUG", "WH-LON", 4, committed=4)], short(3)) is None
    assert write_off([Held("1", "MUG", "WH-BER", 4)], short(3)) is None  # not held there
    assert write_off([], short(3)) is None
    assert write_off([Held("1", "MUG", "WH-LON", 4)], short(0)) is None  # nothing missing


# --- allocating the written-off units again ---


def test_the_nearest_warehouse_that_has_them_all_serves_them() -> None:
    # London (nearest to GB) has one left, Berlin all three: Berlin, no split
    stock = [level("MUG", "WH-LON", 5, reserved=4), level("MUG", "WH-BER", 5)]
    replacement = replace_units(
        Line("1", "MUG", 3), GB, network=NETWORK, sku=MUG, stock=stock, today=TODAY
    )
    assert held_at(replacement.allocations) == [("WH-BER", 3)]
    assert (
        replacement.backordered == []
        and replacement.unfillable == 0
        and bool(replacement.allocations or replacement.backordered)
    )


def test_the_short_warehouse_serves_them_again_if_it_still_has_them() -> None:
    stock = [level("MUG", "WH-LON", 8, reserved=2), level("MUG", "WH-BER", 5)]
    replacement = replace_units(
        Line("1", "MUG", 3), GB, network=NETWORK, sku=MUG, stock=stock, today=TODAY
    )
    assert held_at(replacement.allocations) == [("WH-LON", 3)]


def test_a_split_when_no_warehouse_has_them_all_and_safety_stock_is_kept() -> None:
    stock = [level("MUG", "WH-LON", 3, reserved=1), level("MUG", "WH-BER", 4, safety=2)]
    replacement = replace_units(
        Line("1", "MUG", 4), GB, network=NETWORK, sku=MUG, stock=stock, today=TODAY
    )
    assert held_at(replacement.allocations) == [("WH-LON", 2), ("WH-BER", 2)]


def test_what_no_warehouse_has_is_backordered_after_the_units_already_waiting() -> None:
    incoming = [
        Incoming("HOODIE", "WH-BER", 5, TODAY + timedelta(days=3)),
        Incoming("HOODIE", "WH-LON", 10, TODAY + timedelta(days=9)),
    ]
    stock = [level("HOODIE", "WH-LON", 1)]
    replacement = replace_units(
        Line("1", "HOODIE", 3),
        GB,
        network=NETWORK,
        sku=HOODIE,
        stock=stock,
        incoming=incoming,
        waiting=4,  # the first receipt covers these four and one more: not this line's two
        today=TODAY,
    )
    assert held_at(replacement.allocations) == [("WH-LON", 1)]
    assert replacement.backordered == [
        BackorderedLine(
            line_id="1", sku="HOODIE", quantity=2, expected_restock_date=TODAY + timedelta(days=9)
        )
    ]
    assert replacement.unfillable == 0


def test_units_of_a_sku_that_may_not_wait_are_not_supplied() -> None:
    stock = [level("MUG", "WH-LON", 1), level("MUG", "WH-BER", 0)]
    partly = replace_units(
        Line("1", "MUG", 3), GB, network=NETWORK, sku=MUG, stock=stock, today=TODAY
    )
    # unlike a placement, the part that is there is kept
    assert (held_at(partly.allocations), partly.backordered, partly.unfillable) == (
        [("WH-LON", 1)],
        [],
        2,
    )
    assert partly.allocations or partly.backordered
    nothing = replace_units(
        Line("1", "CAP", 2), GB, network=NETWORK, sku=CAP, stock=[], today=TODAY
    )
    assert (nothing.allocations, nothing.backordered, nothing.unfillable) == ([], [], 2)
    assert not bool(
        nothing.allocations or nothing.backordered
    )  # discontinued: never backordered, nothing held or waiting
    unknown = replace_units(Line("1", "X", 2), GB, network=NETWORK, sku=None, stock=[], today=TODAY)
    assert unknown.unfillable == 2 and not (unknown.allocations or unknown.backordered)


# --- settling a short pick: stock, and the reservation's status ---


def reservation(*held: Held, backordered: bool = False) -> Reservation:
    return Reservation("res-1", "o-1", "held", tuple(held), backordered)


def test_written_off_units_leave_on_hand_and_reserved_then_are_held_again() -> None:
    stock = book(level("MUG", "WH-LON", 5, reserved=4), level("MUG", "WH-BER", 5))
    outcome = settle_short_pick(
        short(3),
        reservation(Held("1", "MUG", "WH-LON", 4)),
        GB,
        network=NETWORK,
        sku=MUG,
        stock=stock,
        today=TODAY,
    )
    assert outcome.written_off == Allocation(
        line_id="1", sku="MUG", warehouse_id="WH-LON", quantity=3
    )
    assert outcome.unheld == 0
    assert held_at(outcome.replacement.allocations) == [("WH-BER", 3)]
    # (sku, warehouse, on_hand, reserved, available, version): London's availability is
    # unchanged by the write-off; Berlin holds the three
    assert [
        (s.level.warehouse_id, s.level.on_hand, s.level.reserved, s.level.available, s.version)
        for s in outcome.levels
    ] == [("WH-LON", 2, 1, 1, 2), ("WH-BER", 5, 3, 2, 2)]
    assert stock.net_changes() == {("MUG", "WH-BER"): (0, 3, 1), ("MUG", "WH-LON"): (-3, -3, 1)}
    assert not outcome.committed  # the three held in Berlin have not shipped


def test_held_again_where_it_was_short_the_row_changes_twice() -> None:
    stock = book(level("MUG", "WH-LON", 10, reserved=4))
    outcome = settle_short_pick(
        short(4),  # nothing found
        reservation(Held("1", "MUG", "WH-LON", 4)),
        GB,
        network=NETWORK,
        sku=MUG,
        stock=stock,
        today=TODAY,
    )
    assert held_at(outcome.replacement.allocations) == [("WH-LON", 4)]
    assert [(s.level.on_hand, s.level.reserved, s.version) for s in outcome.levels] == [
        (6, 0, 2),  # written off
        (6, 4, 3),  # held again
    ]
    assert stock.net_changes() == {("MUG", "WH-LON"): (-4, 0, 2)}


def test_a_short_pick_of_units_the_order_does_not_hold_there_books_what_it_holds() -> None:
    stock = book(level("MUG", "WH-LON", 5, reserved=2))
    outcome = settle_short_pick(
        short(3),
        reservation(Held("1", "MUG", "WH-LON", 2)),
        GB,
        network=NETWORK,
        sku=MUG,
        stock=stock,
        today=TODAY,
    )
    assert outcome.written_off is not None and outcome.written_off.quantity == 2
    assert outcome.unheld == 1
    assert held_at(outcome.replacement.allocations) == [("WH-LON", 2)]  # only what it held
    nothing = settle_short_pick(
        short(3),
        reservation(Held("1", "MUG", "WH-BER", 4)),
        GB,
        network=NETWORK,
        sku=MUG,
        stock=book(level("MUG", "WH-LON", 5)),
        today=TODAY,
    )
    assert (nothing.written_off, nothing.unheld, nothing.levels) == (None, 3, [])
    assert not (nothing.replacement.allocations or nothing.replacement.backordered)


def test_units_not_supplied_leave_the_line_short_and_the_reservation_commits_if_all_shipped() -> (
    None
):
    # line 1 shipped already (its dispatch was handled first); line 2's only unit is missing
    stock = book(level("CAP", "WH-LON", 1, reserved=1))
    shipped_first = reservation(
        Held("1", "MUG", "WH-LON", 2, committed=2), Held("2", "CAP", "WH-LON", 1)
    )
    outcome = settle_short_pick(
        short(1, expected=1, line="2", sku="CAP"),
        shipped_first,
        GB,
        network=NETWORK,
        sku=CAP,
        stock=stock,
        today=TODAY,
    )
    assert outcome.replacement.unfillable == 1 and not bool(
        outcome.replacement.allocations or outcome.replacement.backordered
    )
    assert [(s.level.on_hand, s.level.reserved) for s in outcome.levels] == [(0, 0)]
    assert outcome.committed  # nothing outstanding any more, and something shipped

    # before anything shipped: not committed (the dispatch will commit it)
    before = settle_short_pick(
        short(1, expected=1, line="2", sku="CAP"),
        reservation(Held("1", "MUG", "WH-LON", 2), Held("2", "CAP", "WH-LON", 1)),
        GB,
        network=NETWORK,
        sku=CAP,
        stock=book(level("CAP", "WH-LON", 1, reserved=1)),
        today=TODAY,
    )
    assert not before.committed
    # an order left with nothing at all is not "committed": nothing shipped
    alone = settle_short_pick(
        short(1, expected=1, line="2", sku="CAP"),
        reservation(Held("2", "CAP", "WH-LON", 1)),
        GB,
        network=NETWORK,
        sku=CAP,
        stock=book(level("CAP", "WH-LON", 1, reserved=1)),
        today=TODAY,
    )
    assert not alone.committed


def test_a_backordered_replacement_keeps_the_reservation_open() -> None:
    outcome = settle_short_pick(
        short(2, expected=2, sku="HOODIE"),
        reservation(Held("1", "HOODIE", "WH-LON", 2)),
        GB,
        network=NETWORK,
        sku=HOODIE,
        stock=book(level("HOODIE", "WH-LON", 2, reserved=2)),
        today=TODAY,
    )
    assert outcome.replacement.allocations == []
    assert outcome.replacement.backordered == [
        BackorderedLine(line_id="1", sku="HOODIE", quantity=2, expected_restock_date=None)
    ]
    assert (
        bool(outcome.replacement.allocations or outcome.replacement.backordered)
        and not outcome.committed
    )


def test_the_first_shipment_commits_the_picked_units_and_the_rest_waits_for_its_own() -> None:
    """4 held in London, 1 picked: 3 written off and held again in London. The first
    parcel (1 unit) commits 1; the reservation stays held until the other 3 ship."""
    stock = book(level("MUG", "WH-LON", 10, reserved=4))
    first = reservation(Held("1", "MUG", "WH-LON", 4))
    outcome = settle_short_pick(
        short(3), first, GB, network=NETWORK, sku=MUG, stock=stock, today=TODAY
    )
    assert held_at(outcome.replacement.allocations) == [("WH-LON", 3)]
    after = reservation(Held("1", "MUG", "WH-LON", 4 - 3 + 3))  # as the table holds it now
    parcel = to_commit(after.held, "WH-LON", [Line("1", "MUG", 1)])
    assert held_at(parcel) == [("WH-LON", 1)]
    shipped = after.shipped(parcel)
    assert shipped.status == "held"
    assert shipped.shipped(to_commit(shipped.held, "WH-LON", [Line("1", "MUG", 3)])).status == (
        "committed"
    )

    # held again in Berlin instead: London's allocation is down to the one picked unit
    elsewhere = reservation(Held("1", "MUG", "WH-BER", 3), Held("1", "MUG", "WH-LON", 1))
    parcel = to_commit(elsewhere.held, "WH-LON", [Line("1", "MUG", 1)])
    assert held_at(parcel) == [("WH-LON", 1)]
    assert elsewhere.shipped(parcel).status == "held"  # Berlin's three are not shipped
