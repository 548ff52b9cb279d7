"""What the inventory handlers share: their errors, and stock-level events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.inventory import domain
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope


class UnknownStockItem(Exception):
    """Stock for a SKU or warehouse not in the catalog: retried, then dead-lettered."""


class ReservationNotFound(Exception):
    """A shipment or short pick for an order this service never saw placed: dead-lettered,
    for a human."""


async def emit_levels(
    uow: UnitOfWork,
    snapshots: Sequence[domain.LevelSnapshot],
    now: datetime,
    cause: Envelope | None,
) -> None:
    for snapshot in snapshots:
        await uow.emit(domain.level_changed(snapshot, now=now), cause=cause)
