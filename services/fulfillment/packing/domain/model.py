"""The packing model: sizes, boxes, products, picked lines, and the ids of a packing.
Pure: no I/O, no asyncio."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

# Fixed forever: a redelivered or replayed completion must produce the same ids.
PACKING_NAMESPACE = uuid.UUID("6f1c2a7e-93d4-5b8a-a1e0-4c7b2d9f8e31")


def packing_id_for(order_id: str, warehouse_id: str, backorder_round: str | None = None) -> str:
    """One packing per order, warehouse and allocation round (``backorder_round`` None:
    the order's reservation, whose id is the order and warehouse's as it always was)."""
    name = _packing_name(order_id, warehouse_id, backorder_round)
    return str(uuid.uuid5(PACKING_NAMESPACE, name))


def package_id_for(
    order_id: str, warehouse_id: str, number: int, backorder_round: str | None = None
) -> str:
    """The ``number``-th package (from 1) of that packing."""
    name = _packing_name(order_id, warehouse_id, backorder_round)
    return str(uuid.uuid5(PACKING_NAMESPACE, f"{name}/{number}"))


def _packing_name(order_id: str, warehouse_id: str, backorder_round: str | None) -> str:
    """``order/warehouse`` for the reservation round (fixed forever: replays of packings
    made before rounds existed must find the same ids); a backorder round adds its id
    after a ``round`` segment, which no package number of the reservation's can equal."""
    if backorder_round is None:
        return f"{order_id}/{warehouse_id}"
    return f"{order_id}/{warehouse_id}/round/{backorder_round}"


@dataclass(frozen=True)
class Size:
    """A cuboid in mm. Orientation is free: only the sorted sides matter for fitting."""

    length_mm: int
    width_mm: int
    height_mm: int

    def __post_init__(self) -> None:
        if min(self.length_mm, self.width_mm, self.height_mm) <= 0:
            raise ValueError(f"every side must be positive: {self}")

    @cached_property  # asked for on every fit test: computed once per size
    def sides(self) -> tuple[int, int, int]:
        """Longest side first."""
        a, b, c = sorted((self.length_mm, self.width_mm, self.height_mm), reverse=True)
        return a, b, c

    @cached_property
    def volume(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm

    def fits_in(self, sides: tuple[int, int, int]) -> bool:
        """True if this cuboid, turned as needed, fits inside one with these sorted sides."""
        return all(mine <= theirs for mine, theirs in zip(self.sides, sides, strict=True))

    def grown(self, by_mm: int) -> Size:
        """The size with ``by_mm`` added on every side (a box's walls)."""
        return Size(
            self.length_mm + 2 * by_mm, self.width_mm + 2 * by_mm, self.height_mm + 2 * by_mm
        )


@dataclass(frozen=True)
class Box:
    """A box or mailer on the packing station's shelf."""

    code: str
    inner: Size
    tare_grams: int
    max_load_grams: int
    wall_mm: int

    def __post_init__(self) -> None:
        if self.tare_grams <= 0 or self.max_load_grams <= 0 or self.wall_mm < 0:
            raise ValueError(f"box {self.code}: tare and max load > 0, wall >= 0")

    @property
    def outer(self) -> Size:
        return self.inner.grown(self.wall_mm)


@dataclass(frozen=True)
class Product:
    """A SKU as it goes into a box: its packed size and weight."""

    sku: str
    size: Size
    weight_grams: int

    def __post_init__(self) -> None:
        if self.weight_grams <= 0:
            raise ValueError(f"product {self.sku}: weight must be positive")


@dataclass(frozen=True)
class Catalog:
    """Boxes (smallest inner volume first) and products; ``default`` stands in for a SKU
    the catalog does not know."""

    boxes: tuple[Box, ...]
    products: Mapping[str, Product]
    default: Product

    def __post_init__(self) -> None:
        if not self.boxes:
            raise ValueError("the box catalog is empty")
        codes = [b.code for b in self.boxes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"box codes repeat: {codes}")
        ordered = tuple(sorted(self.boxes, key=lambda b: (b.inner.volume, b.code)))
        object.__setattr__(self, "boxes", ordered)

    @property
    def largest(self) -> Box:
        """Where an item that fits no box goes, alone: the biggest by volume, then load."""
        return max(self.boxes, key=lambda b: (b.inner.volume, b.max_load_grams, b.code))

    def product(self, sku: str) -> Product:
        return self.products.get(sku) or Product(sku, self.default.size, self.default.weight_grams)


@dataclass(frozen=True)
class PickedLine:
    """Units of an order line that reached the packing station."""

    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Task:
    """What packing knows of one pick task: whether its creation and its completion were
    reported (in either order), and what was picked."""

    task_id: str
    created: bool
    completed: bool
    picked: tuple[PickedLine, ...] = ()


def all_tasks_completed(tasks: Sequence[Task]) -> bool:
    """Every task created for a group completed — and no completion of a task whose
    creation has not arrived yet, which means a task we cannot count yet."""
    return bool(tasks) and all(t.created and t.completed for t in tasks)


def picked_lines(tasks: Sequence[Task]) -> list[PickedLine]:
    """What the tasks picked, one entry per (line, SKU); lines with no units left out."""
    totals: dict[tuple[str, str], int] = {}
    for task in tasks:
        for line in task.picked:
            key = (line.line_id, line.sku)
            totals[key] = totals.get(key, 0) + line.quantity
    return [PickedLine(line, sku, n) for (line, sku), n in sorted(totals.items()) if n > 0]
