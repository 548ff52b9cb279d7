"""A small, round-numbered catalog for the cartonization tests: easy to reason about."""

from __future__ import annotations

from services.fulfillment.packing.domain import Box, Catalog, PickedLine, Product, Size

# inner volumes: 1 L, 8 L, 27 L (cubes of 100, 200, 300 mm)
SMALL = Box("S", Size(100, 100, 100), tare_grams=50, max_load_grams=1_000, wall_mm=2)
MEDIUM = Box("M", Size(200, 200, 200), tare_grams=200, max_load_grams=5_000, wall_mm=3)
LARGE = Box("L", Size(300, 300, 300), tare_grams=500, max_load_grams=10_000, wall_mm=5)

PRODUCTS = {
    p.sku: p
    for p in (
        Product("CUBE", Size(50, 50, 50), 100),  # 0.125 L
        Product("BLOCK", Size(95, 95, 95), 200),  # 0.857 L: more than 80 % of the small box
        Product("FEATHER", Size(50, 50, 50), 10),  # light: only volume limits it
        Product("BRICK", Size(90, 90, 90), 4_000),  # 0.729 L, heavy
        Product("PLANK", Size(280, 50, 20), 300),  # only the large box is long enough
        Product("POLE", Size(1_000, 40, 40), 900),  # longer than every box
        Product("ANVIL", Size(80, 80, 80), 12_000),  # fits the small box, too heavy for all
    )
}
DEFAULT = Product("(unknown)", Size(150, 150, 150), 700)


def catalog(*boxes: Box) -> Catalog:
    return Catalog(boxes=boxes or (LARGE, SMALL, MEDIUM), products=PRODUCTS, default=DEFAULT)


def lines(*items: tuple[str, int]) -> list[PickedLine]:
    """One line per SKU, line ids 1, 2, …"""
    return [PickedLine(str(n), sku, qty) for n, (sku, qty) in enumerate(items, start=1)]
