"""Cartonization: which boxes the picked units go into. Pure: no I/O, no asyncio.

Rules (docs/packing.md has them in prose, with a worked example):

- A unit fits a box when its sides, sorted, are each no longer than the box's inner
  sides, sorted (it may be turned any way).
- A set of units fits a box when every unit fits it, their weight is within the box's
  max load and — with more than one unit — their volume is within ``fill_factor`` of
  the box's inner volume (the gaps between items; one item needs only to fit).
- Everything in the smallest box (by inner volume) that fits it all; otherwise split:
  first-fit decreasing by volume into as few loads as fit some box, then each load
  shrunk to the smallest box that fits it.
- A unit that fits no box even alone (too long or too heavy) goes alone into the largest
  box, flagged ``oversize`` for a person at the station.
- Every picked unit ends up in exactly one package (``verify``); anything else is a bug.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.fulfillment.packing.domain.model import Box, Catalog, PickedLine, Product


class PackVerificationError(Exception):
    """The packages do not hold exactly the picked units: a bug, never bad input."""


@dataclass(frozen=True)
class Unit:
    """One physical item of an order line."""

    line_id: str
    sku: str
    product: Product


@dataclass(frozen=True)
class Parcel:
    """A box and the units in it."""

    box: Box
    units: tuple[Unit, ...]
    oversize: bool = False

    @property
    def weight_grams(self) -> int:
        return self.box.tare_grams + sum(u.product.weight_grams for u in self.units)

    @property
    def contents(self) -> list[PickedLine]:
        """Units per (line, SKU), in line order."""
        counted = Counter((u.line_id, u.sku) for u in self.units)
        return [PickedLine(line, sku, n) for (line, sku), n in sorted(counted.items())]


@dataclass(frozen=True)
class Cartonization:
    parcels: tuple[Parcel, ...]
    unknown_skus: tuple[str, ...]  # packed with the catalog's default size and weight
    oversize_skus: tuple[str, ...]  # fit no box: each alone in the largest box


@dataclass(frozen=True)
class _Shape:
    """What decides which boxes can take a set of units."""

    count: int = 0
    volume: int = 0
    weight: int = 0
    sides: tuple[int, int, int] = (0, 0, 0)  # per axis, the longest sorted side of any unit

    def plus(self, product: Product) -> _Shape:
        a, b, c = product.size.sides
        x, y, z = self.sides
        return _Shape(
            self.count + 1,
            self.volume + product.size.volume,
            self.weight + product.weight_grams,
            (max(x, a), max(y, b), max(z, c)),
        )


@dataclass
class _Load:
    """Units gathered for one box."""

    shape: _Shape
    units: list[Unit] = field(default_factory=list)


def _fits(box: Box, shape: _Shape, fill_factor: float) -> bool:
    # spelled out rather than zip()/all(): this runs for every unit, load and box
    (a, b, c), (x, y, z) = shape.sides, box.inner.sides
    if a > x or b > y or c > z or shape.weight > box.max_load_grams:
        return False
    return shape.count <= 1 or shape.volume <= box.inner.volume * fill_factor


def _smallest_box(catalog: Catalog, shape: _Shape, fill_factor: float) -> Box | None:
    return next((b for b in catalog.boxes if _fits(b, shape, fill_factor)), None)


def _units(lines: Iterable[PickedLine], catalog: Catalog) -> list[Unit]:
    units = [
        Unit(line.line_id, line.sku, catalog.product(line.sku))
        for line in lines
        for _ in range(line.quantity)
    ]
    # decreasing volume, then weight; line and SKU make the order (and the ids) stable
    units.sort(key=lambda u: (-u.product.size.volume, -u.product.weight_grams, u.line_id, u.sku))
    return units


def cartonize(lines: Sequence[PickedLine], catalog: Catalog, fill_factor: float) -> Cartonization:
    """Pack the picked lines into boxes from the catalog (see the module's rules)."""
    if not 0 < fill_factor <= 1:
        raise ValueError(f"fill_factor must be in (0, 1], not {fill_factor}")
    loads: list[_Load] = []
    oversize: list[Parcel] = []
    start = 0  # first load worth trying for this unit
    previous: Product | None = None
    fits_alone: dict[Product, bool] = {}
    for unit in _units(lines, catalog):
        alone = _Shape().plus(unit.product)
        if unit.product not in fits_alone:
            fits_alone[unit.product] = _smallest_box(catalog, alone, fill_factor) is not None
        if not fits_alone[unit.product]:
            oversize.append(Parcel(catalog.largest, (unit,), oversize=True))
            continue
        # loads only fill up: those that refused a unit of the same size and weight
        # refuse this one too, so a run of identical units is placed in linear time
        same = previous is not None and _same_shape(previous, unit.product)
        start = start if same else 0
        previous = unit.product
        for index in range(start, len(loads)):
            grown = loads[index].shape.plus(unit.product)
            if _smallest_box(catalog, grown, fill_factor) is not None:
                loads[index].shape = grown
                loads[index].units.append(unit)
                start = index
                break
        else:
            loads.append(_Load(alone, [unit]))
            start = len(loads) - 1
    parcels = [_shrunk(catalog, load, fill_factor) for load in loads] + oversize
    verify(lines, parcels)
    unknown = sorted({line.sku for line in lines} - set(catalog.products))
    return Cartonization(
        parcels=tuple(parcels),
        unknown_skus=tuple(unknown),
        oversize_skus=tuple(sorted({p.units[0].sku for p in oversize})),
    )


def _same_shape(a: Product, b: Product) -> bool:
    return a.size.sides == b.size.sides and a.weight_grams == b.weight_grams


def _shrunk(catalog: Catalog, load: _Load, fill_factor: float) -> Parcel:
    box = _smallest_box(catalog, load.shape, fill_factor)
    assert box is not None, "a load only ever grows while some box fits it"
    return Parcel(box, tuple(load.units))


def verify(lines: Sequence[PickedLine], parcels: Sequence[Parcel]) -> None:
    """Every picked unit in exactly one package: the packages' contents add up to the
    picked lines, no more, no less."""
    picked: Counter[tuple[str, str]] = Counter()
    for line in lines:
        picked[(line.line_id, line.sku)] += line.quantity
    packed: Counter[tuple[str, str]] = Counter()
    for parcel in parcels:
        if not parcel.units:
            raise PackVerificationError(f"an empty {parcel.box.code} would be shipped")
        for item in parcel.contents:
            packed[(item.line_id, item.sku)] += item.quantity
    if +picked != +packed:
        missing, extra = picked - packed, packed - picked
        raise PackVerificationError(
            f"packages do not match the picked units: missing {dict(missing)}, extra {dict(extra)}"
        )
