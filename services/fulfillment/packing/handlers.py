"""Pick task events in → pack each (order, warehouse, allocation round) once all its tasks
completed → events out, in the runtime's unit of work.

``picking.item_picked`` and ``picking.short_picked`` have no handler: the runtime counts
them as ``ignored`` (the completion carries what was picked), and they do not end a run.
A run of ``task_created`` and ``completed`` reports is applied set-based: one upsert
creates and locks every (order, warehouse) row of the run and one query then reads their
groups (store.py), so two transactions can never both see "one task still open" and
leave the packing waiting forever; the reports are noted in memory in run order
(domain/groups.py), and written at the end with one statement per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.fulfillment.packing import domain, store
from shared.runtime.consumer import Batched, Handler, record_context
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import (
    NothingPicked,
    Packed,
    PickingCompleted,
    PickTaskCreated,
)

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
        """``task_created`` and ``completed`` of a run: each noted in its order's groups at
        its warehouse in run order, a group packed when its last task completes; one
        locking upsert, one read and one write for the run."""
        book = await store.lock(uow.conn, {_pair(m) for m, _ in events})
        for message, envelope in events:
            assert isinstance(message, PickTaskCreated | PickingCompleted)
            at = book[_pair(message)]
            with record_context(message, envelope):
                noted = at.note(message)
                if noted.group is not None and noted.after_packing:
                    # its group was packed without it: a repeat of a task created late,
                    # or a late task of that round (a new round makes a group of its own)
                    log.warning(
                        "packing.task_after_packing",
                        task_id=message.task_id,
                        warehouse_id=message.warehouse_id,
                        backorder_round=noted.group.backorder_round,
                        packed_tasks=list(noted.group.packed_task_ids),
                    )
                for group in noted.ready:
                    packed = self._pack(group)
                    await uow.emit(packed, cause=envelope)
                    at.packed(group.backorder_round, packed, packed.occurred_at)
        await store.save(uow.conn, list(book.values()))

    def _pack(self, group: domain.Group) -> Packed | NothingPicked:
        """Cartonize what the group's tasks picked; if they picked nothing, the group is
        closed with nothing to pack (the order must not wait for a parcel from it)."""
        tasks = group.tasks
        lines = domain.picked_lines(tasks)
        if not lines:
            log.info(
                "packing.nothing_picked",
                warehouse_id=group.warehouse_id,
                backorder_round=group.backorder_round,
                task_ids=[t.task_id for t in tasks],
            )
            return domain.nothing_picked(
                group.order_id,
                group.warehouse_id,
                group.short_picks,
                backorder_round=group.backorder_round,
                now=datetime.now(UTC),
            )
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
        packed = domain.packed(
            group.order_id,
            group.warehouse_id,
            result,
            backorder_round=group.backorder_round,
            packer_id=self.packer_id,
            now=now,
        )
        log.debug(  # info would be a line per order: the packed event is the record
            "packing.packed",
            warehouse_id=group.warehouse_id,
            backorder_round=group.backorder_round,
            packing_id=packed.packing_id,
            boxes=[p.box_code for p in packed.packages],
            units=sum(line.quantity for line in lines),
        )
        return packed


def _pair(message: Message) -> store.Pair:
    assert isinstance(message, PickTaskCreated | PickingCompleted)
    return message.order_id, message.warehouse_id


def _describe(product: domain.Product) -> str:
    s = product.size
    return f"{s.length_mm}x{s.width_mm}x{s.height_mm} mm, {product.weight_grams} g"
