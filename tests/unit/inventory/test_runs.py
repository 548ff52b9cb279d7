"""A run of placements or shipments decided in memory (services/inventory/domain): the
same decisions, stock levels and versions as deciding them one by one. No I/O."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.inventory.domain import (
    Failed,
    Held,
    Incoming,
    LevelSnapshot,
    Line,
    Network,
    Placement,
    Reservation,
    Reserved,
    ShipTo,
    Sku,
    StockBook,
    StockKey,
    StockLevel,
    Warehouse,
    allocate,
    reserve_in_turn,
    stock_changes,
)
from shared.schemas.events.inventory import Allocation

TODAY = date(2025, 3, 1)
NETWORK = Network(
    [Warehouse("WH-LON", "London", "GB"), Warehouse("WH-BER", "Berlin", "DE")],
    {"GB": ["DE"], "*": ["DE", "GB"]},
)
SKUS = {
    "MUG": Sku("MUG"),
    "LAMP": Sku("LAMP"),
    "HOODIE": Sku("HOODIE", backorderable=True),
}
INCOMING = [
    Incoming("HOODIE", "WH-LON", 3, TODAY + timedelta(days=7)),
    Incoming("HOODIE", "WH-BER", 10, TODAY + timedelta(days=14)),
]
GB = ShipTo("GB")


def row(
    sku: str, warehouse_id: str, on_hand: int, version: int = 1, safety: int = 0
) -> LevelSnapshot:
    return LevelSnapshot(StockLevel(sku, warehouse_id, on_hand, 0, safety), version, False, None)


def placement(*lines: tuple[str, int], ship_to: ShipTo = GB) -> Placement:
    return Placement([Line(str(n), sku, qty) for n, (sku, qty) in enumerate(lines, 1)], ship_to)


def in_turn(
    placements: list[Placement], rows: list[LevelSnapshot], waiting: dict[str, int] | None = None
) -> tuple[list[tuple[Reserved | Failed, list[LevelSnapshot]]], StockBook]:
    book = StockBook(rows)
    outcomes = reserve_in_turn(
        placements,
        network=NETWORK,
        skus=SKUS,
        stock=book,
        incoming=INCOMING,
        waiting=waiting or {},
        today=TODAY,
    )
    return outcomes, book


def levels(snapshots: list[LevelSnapshot]) -> list[tuple[str, str, int, int, int]]:
    return [
        (s.level.sku, s.level.warehouse_id, s.level.on_hand, s.level.reserved, s.version)
        for s in snapshots
    ]


def held(decision: Reserved | Failed) -> list[tuple[str, str, int]]:
    assert isinstance(decision, Reserved), decision
    return [(a.line_id, a.warehouse_id, a.quantity) for a in decision.allocations]


# --- placements ---


def test_each_placement_sees_the_stock_the_ones_before_it_reserved() -> None:
    rows = [row("MUG", "WH-BER", 4, version=2), row("MUG", "WH-LON", 3, version=5)]
    outcomes, book = in_turn(
        [
            placement(("MUG", 2)),
            placement(("MUG", 2)),
            placement(("MUG", 3)),
            placement(("MUG", 1)),
        ],
        rows,
    )
    (first, l1), (second, l2), (third, l3), (fourth, l4) = outcomes
    assert held(first) == [("1", "WH-LON", 2)]
    assert levels(l1) == [("MUG", "WH-LON", 3, 2, 6)]
    assert held(second) == [("1", "WH-BER", 2)]  # one left in London: Berlin has it all
    assert levels(l2) == [("MUG", "WH-BER", 4, 2, 3)]
    assert held(third) == [("1", "WH-LON", 1), ("1", "WH-BER", 2)]  # a split
    assert levels(l3) == [("MUG", "WH-BER", 4, 4, 4), ("MUG", "WH-LON", 3, 3, 7)]
    assert isinstance(fourth, Failed) and l4 == []
    assert [(s.sku, s.code, s.available) for s in fourth.shortages] == [("MUG", "out_of_stock", 0)]
    # what the database must apply: the sum of the moves, one version per change
    assert book.net_changes() == {("MUG", "WH-BER"): (0, 4, 2), ("MUG", "WH-LON"): (0, 3, 2)}


def test_a_failed_placement_holds_nothing_for_the_next_one() -> None:
    rows = [row("LAMP", "WH-LON", 2), row("MUG", "WH-LON", 1)]
    outcomes, book = in_turn([placement(("LAMP", 2), ("MUG", 5)), placement(("LAMP", 2))], rows)
    assert isinstance(outcomes[0][0], Failed) and outcomes[0][1] == []
    assert held(outcomes[1][0]) == [("1", "WH-LON", 2)]
    assert book.net_changes() == {("LAMP", "WH-LON"): (0, 2, 1)}


def test_units_backordered_earlier_in_the_run_come_first_for_incoming_stock() -> None:
    outcomes, _ = in_turn(
        [placement(("HOODIE", 3)), placement(("LAMP", 1), ("HOODIE", 2))],
        [row("HOODIE", "WH-LON", 1), row("LAMP", "WH-LON", 2)],
    )
    (first, _), (second, second_levels) = outcomes
    assert isinstance(first, Reserved) and isinstance(second, Reserved)
    assert [(b.quantity, b.expected_restock_date) for b in first.backordered] == [
        (2, TODAY + timedelta(days=7))  # 3 arrive in a week
    ]
    assert [(b.quantity, b.expected_restock_date) for b in second.backordered] == [
        (2, TODAY + timedelta(days=14))  # behind the first order's 2: the week's 3 are gone
    ]
    assert levels(second_levels) == [("LAMP", "WH-LON", 2, 1, 2)]


def test_a_run_decides_exactly_as_one_placement_at_a_time() -> None:
    """Random runs against a one-by-one reference: read the rows, allocate, write them
    back with a version bump, queue the backorders — what the handler did per record."""
    skus = sorted(SKUS)
    for seed in range(200):
        rng = random.Random(seed)
        rows = [
            row(
                sku,
                warehouse,
                rng.randint(0, 6),
                version=rng.randint(1, 9),
                safety=rng.randint(0, 1),
            )
            for sku in skus
            for warehouse in ("WH-BER", "WH-LON")
            if rng.random() < 0.8
        ]
        waiting = {"HOODIE": rng.randint(0, 4)}
        placements = [
            placement(
                *[(rng.choice(skus), rng.randint(1, 4)) for _ in range(rng.randint(1, 3))],
                ship_to=ShipTo(rng.choice(["GB", "DE", "FR"])),
            )
            for _ in range(rng.randint(1, 8))
        ]
        outcomes, book = in_turn(placements, rows, waiting)
        expected, final = one_by_one(placements, rows, waiting)
        assert outcomes == expected, seed
        net = book.net_changes()
        for before in rows:
            key = before.level.key
            after = final[key]
            moved = (
                after.level.on_hand - before.level.on_hand,
                after.level.reserved - before.level.reserved,
                after.version - before.version,
            )
            assert net.get(key, (0, 0, 0)) == moved, seed


def one_by_one(
    placements: list[Placement], rows: list[LevelSnapshot], waiting: dict[str, int]
) -> tuple[list[tuple[Reserved | Failed, list[LevelSnapshot]]], dict[StockKey, LevelSnapshot]]:
    table = {r.level.key: r for r in rows}
    queued = dict(waiting)
    outcomes: list[tuple[Reserved | Failed, list[LevelSnapshot]]] = []
    for p in placements:
        wanted = {line.sku for line in p.lines}
        decision = allocate(
            p.lines,
            p.ship_to,
            network=NETWORK,
            skus=SKUS,
            stock=[table[k].level for k in sorted(table) if k[0] in wanted],
            incoming=[i for i in INCOMING if i.sku in wanted],
            waiting={sku: n for sku, n in queued.items() if sku in wanted},
            today=TODAY,
        )
        changed: list[LevelSnapshot] = []
        if isinstance(decision, Reserved):
            for key, (_, d_reserved) in sorted(
                stock_changes(decision.allocations, reserved=1).items()
            ):
                current = table[key]
                level = replace(current.level, reserved=current.level.reserved + d_reserved)
                table[key] = replace(current, level=level, version=current.version + 1)
                changed.append(table[key])
            for b in decision.backordered:
                queued[b.sku] = queued.get(b.sku, 0) + b.quantity
        outcomes.append((decision, changed))
    return outcomes, table


# --- the stock book ---


def test_every_change_of_a_row_is_a_new_version() -> None:
    book = StockBook([row("MUG", "WH-LON", 5, version=3), row("TEE", "WH-LON", 2)])
    assert levels(book.change({("MUG", "WH-LON"): (0, 2), ("TEE", "WH-LON"): (0, 0)})) == [
        ("MUG", "WH-LON", 5, 2, 4)  # a row that does not move is no change
    ]
    assert levels(book.change({("MUG", "WH-LON"): (-2, -2)})) == [("MUG", "WH-LON", 3, 0, 5)]
    assert book.levels({"MUG"}) == [StockLevel("MUG", "WH-LON", 3, 0, 0)]
    assert book.net_changes() == {("MUG", "WH-LON"): (-2, 0, 2)}


def test_a_change_to_a_row_not_locked_is_refused() -> None:
    book = StockBook([row("MUG", "WH-LON", 5)])
    with pytest.raises(LookupError, match="no stock row for MUG in WH-BER"):
        book.change({("MUG", "WH-BER"): (0, 1)})


# --- shipments ---


def test_a_reservation_is_committed_once_every_unit_shipped() -> None:
    reservation = Reservation(
        "res-1", "o-1", "held", (Held("1", "MUG", "WH-LON", 2), Held("1", "MUG", "WH-BER", 1))
    )
    first = reservation.shipped(
        [Allocation(line_id="1", sku="MUG", warehouse_id="WH-LON", quantity=1)]
    )
    assert first.status == "held"
    assert [h.committed for h in first.held] == [1, 0]
    second = first.shipped(
        [
            Allocation(line_id="1", sku="MUG", warehouse_id="WH-LON", quantity=1),
            Allocation(line_id="1", sku="MUG", warehouse_id="WH-BER", quantity=1),
        ]
    )
    assert second.status == "committed"
    assert reservation.status == "held"  # unchanged: the next shipment sees ``second``


def test_a_reservation_with_units_on_backorder_stays_held() -> None:
    reservation = Reservation(
        "res-1", "o-1", "held", (Held("1", "HOODIE", "WH-LON", 1),), backordered=True
    )
    shipped = reservation.shipped(
        [Allocation(line_id="1", sku="HOODIE", warehouse_id="WH-LON", quantity=1)]
    )
    assert shipped.status == "held" and shipped.held[0].outstanding == 0
