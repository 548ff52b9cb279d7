"""Pick task events in → pack an (order, warehouse) once all its tasks completed → events
out, in the runtime's unit of work.

``picking.item_picked`` and ``picking.short_picked`` have no handler: the runtime counts
them as ``ignored`` (the completion carries what was picked), and they do not end a run.
A run of ``task_created`` and ``completed`` reports is applied set-based: one upsert
creates, locks and reads every (order, warehouse) row of the run (store.py), so two
transactions can never both see "one task still open" and leave the packing waiting
forever; the reports are merged in memory in run order, and the rows are written with
one statement at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.fulfillment.packing import domain, store
from shared.runtime.consumer import Batched, Handler, record_context
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import Packed, PickingCompleted, PickTaskCreated

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
        # one Batched for both: picking emits them interleaved on one topic
        reports = Batched(self.on_task_reports)
        return {PickTaskCreated.TYPE: reports, PickingCompleted.TYPE: reports}

    async def on_task_reports(
        self, uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
    ) -> None:
        """``task_created`` and ``completed`` of a run: each merged into its group in run
        order, the group packed when its last task completes; one locking read and one
        write for the run."""
        groups = await store.lock_groups(uow.conn, {_group_key(m) for m, _ in events})
        for message, envelope in events:
            assert isinstance(message, PickTaskCreated | PickingCompleted)
            key = _group_key(message)
            with record_context(message, envelope):
                group = groups[key].noted(message)
                groups[key] = await self._pack_if_complete(uow, envelope, message, group)
        await store.save_groups(uow.conn, list(groups.values()))

    async def _pack_if_complete(
        self,
        uow: UnitOfWork,
        envelope: Envelope,
        message: PickTaskCreated | PickingCompleted,
        group: store.Group,
    ) -> store.Group:
        """The group, packed now if this report completed it."""
        if group.packed:
            if message.task_id not in group.packed_task_ids:
                # packing is once per (order, warehouse): a task after that is not boxed
                log.warning(
                    "packing.task_after_packing",
                    task_id=message.task_id,
                    warehouse_id=message.warehouse_id,
                    packed_tasks=list(group.packed_task_ids),
                )
            return group
        tasks = group.tasks
        if not domain.all_tasks_completed(tasks):
            return group
        packed = self._pack(message.order_id, message.warehouse_id, tasks)
        if packed is None:
            return group
        await uow.emit(packed, cause=envelope)
        return group.packed_as(packed, [t.task_id for t in tasks], packed.occurred_at)

    def _pack(self, order_id: str, warehouse_id: str, tasks: list[domain.Task]) -> Packed | None:
        """Cartonize what the tasks picked; None if they picked nothing."""
        task_ids = [t.task_id for t in tasks]
        lines = domain.picked_lines(tasks)
        if not lines:
            # stays waiting: a later task for this warehouse (a backorder) may bring units
            log.warning("packing.nothing_picked", warehouse_id=warehouse_id, task_ids=task_ids)
            return None
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
        log.debug(  # info would be a line per order: the packed event is the record
            "packing.packed",
            warehouse_id=warehouse_id,
            packing_id=packed.packing_id,
            boxes=[p.box_code for p in packed.packages],
            units=sum(line.quantity for line in lines),
        )
        return packed


def _group_key(message: Message) -> store.GroupKey:
    assert isinstance(message, PickTaskCreated | PickingCompleted)
    return message.order_id, message.warehouse_id


def _describe(product: domain.Product) -> str:
    s = product.size
    return f"{s.length_mm}x{s.width_mm}x{s.height_mm} mm, {product.weight_grams} g"
