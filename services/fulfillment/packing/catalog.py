"""The box and product catalogs: JSON files (``seed/boxes.json``, ``seed/products.json``
by default), validated and read once at start-up into a :class:`domain.Catalog`.

They live in files, not tables: they change with the packaging on the shelves, rarely,
and every order reads them, so the service keeps them in memory. To change one, edit the
file (or point ``CONVEYOR_PACKING_BOXES_PATH`` / ``CONVEYOR_PACKING_PRODUCTS_PATH`` at
another) and restart the service; a broken file stops it at start-up, loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from services.fulfillment.packing.domain import Box, Catalog, Product, Size

SEED = Path(__file__).parent / "seed"
DEFAULT_BOXES = SEED / "boxes.json"
DEFAULT_PRODUCTS = SEED / "products.json"

Millimetres = Annotated[int, Field(gt=0, le=10_000)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    length_mm: Millimetres
    width_mm: Millimetres
    height_mm: Millimetres

    @property
    def size(self) -> Size:
        return Size(self.length_mm, self.width_mm, self.height_mm)


class BoxEntry(_Entry):
    code: str = Field(min_length=1)
    tare_grams: PositiveInt
    max_load_grams: PositiveInt
    wall_mm: Annotated[int, Field(ge=0, le=50)] | None = None  # None: the setting


class ProductEntry(_Entry):
    sku: str = Field(min_length=1)
    weight_grams: PositiveInt


class BoxFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    boxes: list[BoxEntry] = Field(min_length=1)

    @field_validator("boxes")
    @classmethod
    def _codes_unique(cls, boxes: list[BoxEntry]) -> list[BoxEntry]:
        _refuse_repeats([b.code for b in boxes], "box code")
        return boxes


class ProductFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    products: list[ProductEntry]

    @field_validator("products")
    @classmethod
    def _skus_unique(cls, products: list[ProductEntry]) -> list[ProductEntry]:
        _refuse_repeats([p.sku for p in products], "SKU")
        return products


def _refuse_repeats(names: list[str], what: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} listed more than once: {repeated}")


def load_catalog(
    *,
    boxes_path: Path = DEFAULT_BOXES,
    products_path: Path = DEFAULT_PRODUCTS,
    default_product: Product,
    wall_mm: int,
) -> Catalog:
    """Both files, validated; a box without ``wall_mm`` gets the ``wall_mm`` given."""
    boxes = BoxFile.model_validate_json(boxes_path.read_bytes()).boxes
    products = ProductFile.model_validate_json(products_path.read_bytes()).products
    return Catalog(
        boxes=tuple(
            Box(
                code=b.code,
                inner=b.size,
                tare_grams=b.tare_grams,
                max_load_grams=b.max_load_grams,
                wall_mm=wall_mm if b.wall_mm is None else b.wall_mm,
            )
            for b in boxes
        ),
        products={p.sku: Product(p.sku, p.size, p.weight_grams) for p in products},
        default=default_product,
    )
