"""The ``packing.packed.v1`` event of a finished cartonization. Pure."""

from __future__ import annotations

from datetime import datetime

from services.fulfillment.packing.domain.cartonization import Cartonization, Parcel
from services.fulfillment.packing.domain.model import package_id_for, packing_id_for
from shared.schemas.events.fulfillment import ItemCount, NothingPicked, Package, Packed, ShortLine


def package(parcel: Parcel, package_id: str) -> Package:
    """A parcel as it leaves the station: the box's outer size, longest side first, and
    its weight with the box."""
    length, width, height = parcel.box.outer.sides
    return Package(
        package_id=package_id,
        box_code=parcel.box.code,
        length_mm=length,
        width_mm=width,
        height_mm=height,
        weight_grams=parcel.weight_grams,
        items=[
            ItemCount(line_id=item.line_id, sku=item.sku, quantity=item.quantity)
            for item in parcel.contents
        ],
    )


def packed(
    order_id: str,
    warehouse_id: str,
    cartonization: Cartonization,
    *,
    backorder_round: str | None = None,
    packer_id: str,
    now: datetime,
) -> Packed:
    """Ids derive from the order, warehouse and round, so packing the same picks again
    gives the same event (apart from its time)."""
    return Packed(
        order_id=order_id,
        occurred_at=now,
        packing_id=packing_id_for(order_id, warehouse_id, backorder_round),
        warehouse_id=warehouse_id,
        packages=[
            package(parcel, package_id_for(order_id, warehouse_id, number, backorder_round))
            for number, parcel in enumerate(cartonization.parcels, start=1)
        ],
        packer_id=packer_id,
        backorder_round=backorder_round,
    )


def nothing_picked(
    order_id: str,
    warehouse_id: str,
    short_picks: list[tuple[str, str]],
    *,
    backorder_round: str | None = None,
    now: datetime,
) -> NothingPicked:
    """A group whose every task completed with nothing picked: closed with nothing to
    pack, under the packing id it would have had. ``short_picks``: (task, line) pairs."""
    return NothingPicked(
        order_id=order_id,
        occurred_at=now,
        packing_id=packing_id_for(order_id, warehouse_id, backorder_round),
        warehouse_id=warehouse_id,
        short_picks=[ShortLine(task_id=t, line_id=line) for t, line in sorted(short_picks)],
        backorder_round=backorder_round,
    )
