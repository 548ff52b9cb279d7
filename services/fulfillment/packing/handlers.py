"""Pick task events in → pack an (order, warehouse) once all its tasks completed → events
out, in the runtime's unit of work.

``picking.item_picked`` and ``picking.short_picked`` have no handler: the runtime counts
them as ``ignored`` (the completion carries what was picked). Each report is merged into
its (order, warehouse) row by one upsert that also locks the row and returns every task
of the group (store.py), so two transactions can never both see "one task still open"
and leave the packing waiting forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.fulfillment.packing import domain, store
from shared.runtime.consumer import Handler
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import PickingCompleted, PickTaskCreated

log = get_logger(__name__)


class PackingHandlers:
    """The packing station: a catalog, how full a box may get, and who packs."""

    def __init__(self, catalog: domain.Catalog, *, fill_factor: float, packer_id: str) -> None:
        if not 0 < fill_factor <= 1:
            raise ValueError(f"fill factor must be in (0, 1], not {fill_factor}")
        self.catalog = catalog
        self.fill_factor = fill_factor
        self.packer_id = packer_id

    def handlers(self) -> dict[str, Handler]:
        return {
            PickTaskCreated.TYPE: self.on_task_created,
            PickingCompleted.TYPE: self.on_picking_completed,
        }

    async def on_task_created(self, uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
        assert isinstance(message, PickTaskCreated)
        group = await store.report_created(uow.conn, message)
        await self._pack_if_complete(uow, envelope, message, group)

    async def on_picking_completed(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, PickingCompleted)
        group = await store.report_completed(uow.conn, message)
        await self._pack_if_complete(uow, envelope, message, group)

    async def _pack_if_complete(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        message: PickTaskCreated | PickingCompleted,
        group: store.Group,
    ) -> None:
        if group.packed:
            if message.task_id not in group.packed_task_ids:
                # packing is once per (order, warehouse): a task after that is not boxed
                log.warning(
                    "packing.task_after_packing",
                    task_id=message.task_id,
                    warehouse_id=message.warehouse_id,
                    packed_tasks=list(group.packed_task_ids),
                )
            return
        if domain.all_tasks_completed(group.tasks):
            await self._pack(uow, envelope, message.order_id, message.warehouse_id, group.tasks)

    async def _pack(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        order_id: str,
        warehouse_id: str,
        tasks: list[domain.Task],
    ) -> None:
        task_ids = [t.task_id for t in tasks]
        lines = domain.picked_lines(tasks)
        if not lines:
            # stays waiting: a later task for this warehouse (a backorder) may bring units
            log.warning("packing.nothing_picked", warehouse_id=warehouse_id, task_ids=task_ids)
            return
        result = domain.cartonize(lines, self.catalog, self.fill_factor)
        if result.unknown_skus:
            log.warning(
                "packing.unknown_skus",
                skus=list(result.unknown_skus),
                default=_describe(self.catalog.default),
            )
        if result.oversize_skus:
            log.warning(
                "packing.oversize",
                skus=list(result.oversize_skus),
                box=self.catalog.largest.code,
                note="fits no box: packed alone in the largest box, check at the station",
            )
        now = datetime.now(UTC)
        packed = domain.packed(order_id, warehouse_id, result, packer_id=self.packer_id, now=now)
        marked = await store.mark_packed(uow.conn, packed, task_ids, now)
        assert marked, "the packing row is locked and was waiting"
        await uow.emit(packed, cause=envelope)
        log.debug(  # info would be a line per order: the packed event is the record
            "packing.packed",
            warehouse_id=warehouse_id,
            packing_id=packed.packing_id,
            boxes=[p.box_code for p in packed.packages],
            units=sum(line.quantity for line in lines),
        )


def _describe(product: domain.Product) -> str:
    s = product.size
    return f"{s.length_mm}x{s.width_mm}x{s.height_mm} mm, {product.weight_grams} g"
