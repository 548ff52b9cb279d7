"""Release, commit, backorder serving, level events and the shipped seed file. No I/O."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.inventory.domain import (
    Backorder,
    Held,
    LevelSnapshot,
    Line,
    StockLevel,
    level_changed,
    received,
    reservation_id_for,
    serve_backorders,
    stock_changes,
    to_commit,
    to_release,
)
from services.inventory.seed import DEFAULT_SEED, Seed, read_seed
from shared.schemas.events.inventory import Allocation
from tests.factories import submission_body

ROOT = Path(__file__).resolve().parents[3]


def backorder(order: str, qty: int, seq: int, line: str = "1") -> Backorder:
    return Backorder(f"res-{order}", order, line, "HOODIE", qty, seq)


def test_reservation_id_is_stable_per_order() -> None:
    assert reservation_id_for("o-1") == reservation_id_for("o-1") != reservation_id_for("o-2")


def test_release_gives_back_only_units_not_shipped() -> None:
    held = [
        Held("1", "MUG", "WH-LON", 3, committed=1),
        Held("2", "TEE", "WH-BER", 2, committed=2),
        Held("3", "TEE", "WH-LON", 1),
    ]
    assert [(a.line_id, a.quantity) for a in to_release(held)] == [("1", 2), ("3", 1)]
    assert to_release([]) == []


def test_a_shipment_commits_what_it_carries_from_its_own_warehouse() -> None:
    held = [
        Held("1", "MUG", "WH-LON", 3),
        Held("1", "MUG", "WH-BER", 2),
        Held("2", "TEE", "WH-LON", 1, committed=1),
    ]
    shipped = [Line("1", "MUG", 2), Line("1", "MUG", 5), Line("2", "TEE", 1)]
    committed = to_commit(held, "WH-LON", shipped)
    # line 1: 7 shipped but 3 held in London; line 2 was committed by an earlier shipment
    assert [(a.line_id, a.warehouse_id, a.quantity) for a in committed] == [("1", "WH-LON", 3)]
    assert to_commit(held, "WH-NJ", shipped) == []


def test_stock_changes_add_up_per_row() -> None:
    allocations = [
        Allocation(line_id="1", sku="MUG", warehouse_id="W", quantity=2),
        Allocation(line_id="2", sku="MUG", warehouse_id="W", quantity=3),
        Allocation(line_id="3", sku="TEE", warehouse_id="W", quantity=1),
    ]
    assert stock_changes(allocations, reserved=1) == {("MUG", "W"): (0, 5), ("TEE", "W"): (0, 1)}
    assert stock_changes(allocations[:1], on_hand=-1, reserved=-1) == {("MUG", "W"): (-2, -2)}


def test_received_units_serve_backorders_oldest_first() -> None:
    queue = [backorder("b", 3, seq=7), backorder("a", 2, seq=3), backorder("c", 5, seq=9)]
    served = serve_backorders(queue, available=4)
    assert [(s.backorder.order_id, s.quantity, s.remaining) for s in served] == [
        ("a", 2, 0),
        ("b", 2, 1),
    ]
    assert serve_backorders(queue, available=0) == []


def test_received_stock_still_keeps_the_safety_stock() -> None:
    level = StockLevel("HOODIE", "WH-LON", on_hand=0, reserved=0, safety_stock=3)
    assert received(level, 5).available == 2


def test_level_event_floors_available_and_the_restock_date() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    snapshot = LevelSnapshot(
        StockLevel("MUG", "WH-LON", on_hand=3, reserved=1, safety_stock=5),
        version=4,
        backorderable=True,
        next_restock_date=date(2025, 2, 20),  # overdue: expected any day
    )
    event = level_changed(snapshot, now=now)
    assert (event.available, event.version, event.next_restock_date) == (0, 4, now.date())
    assert event.subject == "MUG"  # keyed by SKU
    later = LevelSnapshot(snapshot.level, 5, True, now.date() + timedelta(days=3))
    assert level_changed(later, now=now).next_restock_date == date(2025, 3, 4)


# --- the shipped seed file ---


def test_the_default_seed_is_valid_and_stocks_the_example_and_test_skus() -> None:
    seed = read_seed(DEFAULT_SEED)
    skus = {s.sku for s in seed.skus}
    example = json.loads((ROOT / "examples" / "order.json").read_text())
    wanted = {line["sku"] for line in example["lines"]}
    wanted |= {line["sku"] for line in submission_body("X")["lines"]}
    assert wanted <= skus
    assert {"MUG-BLUE", "TEE-M-BLACK", "TEE-M"} <= wanted
    warehouses = {w.warehouse_id for w in seed.warehouses}
    assert len({w.region.split("-")[0] for w in seed.warehouses}) >= 2
    for row in seed.stock:
        assert row.sku in skus and row.warehouse_id in warehouses
    for item in seed.incoming:
        assert item.sku in skus and item.warehouse_id in warehouses
    assert any(s.backorderable for s in seed.skus)
    assert len({(r.sku, r.warehouse_id) for r in seed.stock}) == len(seed.stock)


@pytest.mark.parametrize(
    "bad",
    [
        {"warehouses": [{"warehouse_id": "W", "name": "x", "region": "england"}]},
        {"stock": [{"sku": "A", "warehouse_id": "W", "on_hand": -1}]},
        {"incoming": [{"reference": "P", "sku": "A", "warehouse_id": "W", "quantity": 1}]},
        {"skus": [{"sku": "A", "backorderabel": True}]},  # typo: refused, not ignored
        {"region_order": {"gb": ["DE"]}},
        {"region_order": {"GB": ["Germany"]}},
    ],
)
def test_a_broken_seed_file_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Seed.model_validate(bad)
