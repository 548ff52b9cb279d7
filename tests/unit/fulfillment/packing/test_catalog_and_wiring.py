"""The shipped catalogs, the settings, and the service's wiring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.fulfillment.packing.app import PackingSettings, definition
from services.fulfillment.packing.catalog import DEFAULT_BOXES, DEFAULT_PRODUCTS
from services.fulfillment.packing.domain import PickedLine, cartonize
from shared.schemas import TOPICS

DEMO_SKUS = {
    "MUG-BLUE",
    "TEE-M",
    "TEE-M-BLACK",
    "TEE-L-BLACK",
    "HOODIE-L-GREY",
    "POSTER-A2",
    "CAP-RED",
}


def test_the_shipped_catalogs_cover_the_demo_skus() -> None:
    catalog = PackingSettings().load_catalog()
    assert 5 <= len(catalog.boxes) <= 7
    assert set(catalog.products) == DEMO_SKUS
    for sku in DEMO_SKUS:  # each one alone fits some box: none is oversize
        assert not cartonize([PickedLine("1", sku, 1)], catalog, 0.8).oversize_skus


def _pack(*items: tuple[str, int]) -> list[tuple[str, int, tuple[int, int, int]]]:
    catalog = PackingSettings().load_catalog()
    picked = [PickedLine(str(n), sku, q) for n, (sku, q) in enumerate(items, start=1)]
    return [
        (p.box.code, p.weight_grams, p.box.outer.sides)
        for p in cartonize(picked, catalog, 0.8).parcels
    ]


def test_the_worked_examples_of_the_docs() -> None:
    # docs/packing.md, "A worked example": keep both in step
    assert _pack(("MUG-BLUE", 2), ("TEE-M", 1)) == [("BOX-M", 1230, (306, 256, 156))]
    assert _pack(("TEE-M", 1)) == [("MAILER-S", 195, (282, 212, 42))]
    assert _pack(("POSTER-A2", 1), ("TEE-M", 1)) == [
        ("TUBE-A2", 270, (644, 84, 84)),
        ("MAILER-S", 195, (282, 212, 42)),
    ]
    assert _pack(("MUG-BLUE", 30)) == [
        ("BOX-L", 8850, (410, 310, 260)),
        ("BOX-L", 4050, (410, 310, 260)),
    ]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_PACKING_FILL_FACTOR", "0.6")
    monkeypatch.setenv("CONVEYOR_PACKING_DEFAULT_WEIGHT_GRAMS", "900")
    monkeypatch.setenv("CONVEYOR_PACKING_PACKER_ID", "station-7")
    s = PackingSettings()
    assert (s.fill_factor, s.default_weight_grams, s.packer_id) == (0.6, 900, "station-7")
    assert s.default_product().size.sides == (300, 200, 100)
    monkeypatch.setenv("CONVEYOR_PACKING_FILL_FACTOR", "1.5")
    with pytest.raises(ValidationError):
        PackingSettings()


def test_other_catalog_files_and_the_wall_default(tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.json"
    boxes.write_text(
        json.dumps(
            {
                "boxes": [
                    {"code": "ONLY", "length_mm": 500, "width_mm": 400, "height_mm": 300,
                     "tare_grams": 300, "max_load_grams": 15000}
                ]
            }
        )
    )  # fmt: skip
    catalog = PackingSettings(boxes_path=boxes, wall_mm=4).load_catalog()
    [only] = catalog.boxes
    assert only.wall_mm == 4 and only.outer.sides == (508, 408, 308)
    assert set(catalog.products) == DEMO_SKUS  # the products file stays the shipped one


def test_a_broken_catalog_is_refused(tmp_path: Path) -> None:
    shipped = json.loads(DEFAULT_BOXES.read_text())
    repeated = tmp_path / "repeated.json"
    repeated.write_text(json.dumps({"boxes": shipped["boxes"] + shipped["boxes"][:1]}))
    with pytest.raises(ValidationError, match="more than once"):
        PackingSettings(boxes_path=repeated).load_catalog()
    products = json.loads(DEFAULT_PRODUCTS.read_text())
    products["products"][0]["weight_grams"] = 0
    weightless = tmp_path / "weightless.json"
    weightless.write_text(json.dumps(products))
    with pytest.raises(ValidationError):
        PackingSettings(products_path=weightless).load_catalog()


def test_wiring_handles_created_and_completed_and_ignores_progress() -> None:
    service = definition()
    assert service.name == "packing" and service.schema == "packing_service"
    assert set(service.handlers) == {"picking.task_created.v1", "picking.completed.v1"}
    assert service.unreachable_handlers() == []
    # the rest of picking.events reaches the consumer and is counted "ignored", not
    # dead-lettered: it has no handler here (shared/runtime/consumer.py, _apply_one)
    others = set(TOPICS["picking.events"].messages) - set(service.handlers)
    # a withdrawn task never completes: its cancelled order's group is never packed
    assert others == {
        "picking.item_picked.v1",
        "picking.short_picked.v1",
        "picking.task_cancelled.v1",
    }
    assert "packing" in TOPICS["picking.events"].consumers
    assert TOPICS["packing.events"].writers == ("packing",)
    assert sorted(p.name for p in service.migrations.glob("*.sql")) == [
        "0001_packings_and_tasks.sql",
        "0002_packings_per_round.sql",
    ]
