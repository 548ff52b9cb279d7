"""From an order's allocations to pick tasks, by each warehouse's strategy. Pure.

- ``single_order``: one task per order and warehouse, released at once;
- ``zone``: one task per order, warehouse and zone; each item goes to its bin's zone;
- ``batch`` and ``wave``: one task per order and warehouse, held in a trip (see
  ``trips.py``) and released with it.

An order's allocations arrive in *rounds*: the reservation, then any later backorder
allocations. Each round is planned once; its task ids derive from the order, warehouse,
zone and round, so a replayed event finds the tasks it made before. The reservation round
is named after the reservation, a backorder round by ``BackorderAllocated.round_id``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from services.fulfillment.picking.domain.layout import Layout
from shared.schemas.events.fulfillment import PickingStrategy

# Fixed forever: a replayed order must find the same task ids.
PICKING_NAMESPACE = uuid.UUID("6f2e9c41-0b7d-5a38-9e14-2c8d5b7a3f60")

HELD_IN_TRIPS: frozenset[PickingStrategy] = frozenset({"batch", "wave"})


@dataclass(frozen=True)
class OrderState:
    """What picking knows of an order: events about it arrive on several topics, in any
    order, so each is noted and tasks are planned once both halves are known."""

    order_id: str
    confirmed: bool = False
    cancelled: bool = False

    @property
    def may_pick(self) -> bool:
        """Confirmed and never cancelled: only then are its allocations planned."""
        return self.confirmed and not self.cancelled


@dataclass(frozen=True)
class Allocated:
    """Units of one order line held for the order in one warehouse."""

    line_id: str
    sku: str
    warehouse_id: str
    quantity: int


@dataclass(frozen=True)
class PickLine:
    line_id: str
    sku: str
    quantity: int
    location: str


@dataclass(frozen=True)
class PlannedTask:
    task_id: str
    order_id: str
    warehouse_id: str
    round_id: str
    strategy: PickingStrategy
    zone: str | None  # set only by the zone strategy
    lines: tuple[PickLine, ...]

    @property
    def held_in_trip(self) -> bool:
        return self.strategy in HELD_IN_TRIPS


@dataclass(frozen=True)
class Plan:
    tasks: list[PlannedTask]
    unslotted: list[tuple[str, str]]  # (warehouse, sku) picked from the unslotted bin


def task_id_for(order_id: str, warehouse_id: str, zone: str | None, round_id: str) -> str:
    key = f"task:{order_id}:{warehouse_id}:{zone or ''}:{round_id}"
    return str(uuid.uuid5(PICKING_NAMESPACE, key))


def backorder_round_of(round_id: str, reservation_id: str) -> str | None:
    """The round as ``picking.task_created`` names it (``backorder_round``): None for the
    reservation round, which is named after its reservation, else the backorder round's
    id. Both ids are stored with every task, so a task read back is named alike."""
    return None if round_id == reservation_id else round_id


def plan_tasks(
    order_id: str, round_id: str, allocations: Iterable[Allocated], layout: Layout
) -> Plan:
    """The tasks of one allocation round, per warehouse by its strategy; lines in pick-path
    order (by location), tasks by (warehouse, zone)."""
    by_warehouse: dict[str, list[Allocated]] = defaultdict(list)
    for allocation in allocations:
        by_warehouse[allocation.warehouse_id].append(allocation)
    tasks: list[PlannedTask] = []
    unslotted: list[tuple[str, str]] = []
    for warehouse_id in sorted(by_warehouse):
        floor = layout.warehouse(warehouse_id)
        groups: dict[str | None, list[PickLine]] = defaultdict(list)
        for a in by_warehouse[warehouse_id]:
            if floor.locate(a.sku) is None:
                unslotted.append((warehouse_id, a.sku))
            bin_ = floor.bin_for(a.sku)
            zone = bin_.zone if floor.strategy == "zone" else None
            groups[zone].append(PickLine(a.line_id, a.sku, a.quantity, bin_.location))
        for zone in sorted(groups, key=lambda z: z or ""):
            lines = tuple(sorted(groups[zone], key=lambda p: (p.location, p.line_id)))
            tasks.append(
                PlannedTask(
                    task_id=task_id_for(order_id, warehouse_id, zone, round_id),
                    order_id=order_id,
                    warehouse_id=warehouse_id,
                    round_id=round_id,
                    strategy=floor.strategy,
                    zone=zone,
                    lines=lines,
                )
            )
    return Plan(tasks, unslotted)
