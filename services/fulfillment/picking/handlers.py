"""Order, inventory and handheld messages in → picking rules → events out.

``order.confirmed`` and ``inventory.reserved`` come on different topics, in either order:
each handler notes its half under the order's row lock, then plans whatever rounds the
order may now have picked (``planner``). A cancelled order is never planned,
and its unfinished tasks are cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.fulfillment.picking import domain, planner, scans, store
from services.fulfillment.picking.domain import Allocated, Layout
from shared.runtime.consumer import Handler
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ConfirmPick
from shared.schemas.events.inventory import Allocation, BackorderAllocated, InventoryReserved
from shared.schemas.events.order import OrderCancelled, OrderConfirmed

log = get_logger(__name__)


def _allocated(allocations: list[Allocation]) -> list[Allocated]:
    return [Allocated(a.line_id, a.sku, a.warehouse_id, a.quantity) for a in allocations]


class PickingHandlers:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def handlers(self) -> dict[str, Handler]:
        return {
            OrderConfirmed.TYPE: self.on_order_confirmed,
            OrderCancelled.TYPE: self.on_order_cancelled,
            InventoryReserved.TYPE: self.on_inventory_reserved,
            BackorderAllocated.TYPE: self.on_backorder_allocated,
            ConfirmPick.TYPE: self.on_confirm_pick,
        }

    async def on_order_confirmed(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, OrderConfirmed)
        now = datetime.now(UTC)
        order = await store.note_confirmed(
            uow.conn, message.order_id, message.reservation_id, message.backordered_skus, now
        )
        if order.cancelled:
            log.info("picking.confirmed_after_cancel", detail="a cancelled order gets no tasks")
            return
        if message.backordered_skus:
            log.info("picking.backordered_skus_wait", skus=message.backordered_skus)
        for round_ in await store.claim_unplanned(uow.conn, message.order_id, now):
            await planner.plan_round(uow, round_, self.layout, now, envelope)

    async def on_inventory_reserved(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, InventoryReserved)
        round_ = store.Round(
            message.order_id,
            message.reservation_id,  # the first round is named after the reservation
            message.reservation_id,
            _allocated(message.allocations),
        )
        await self._note_round(uow, round_, envelope)

    async def on_backorder_allocated(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, BackorderAllocated)
        allocations = _allocated(message.allocations)
        waiting = sum(b.quantity for b in message.still_backordered)
        round_id = domain.backorder_round_id(allocations, waiting)
        round_ = store.Round(message.order_id, round_id, message.reservation_id, allocations)
        await self._note_round(uow, round_, envelope)

    async def _note_round(self, uow: UnitOfWork, round_: store.Round, envelope: Envelope) -> None:
        """Plan the round now if the order may be picked, else keep it for later."""
        if not round_.allocations:
            return  # everything backordered: tasks come with the backorder allocation
        now = datetime.now(UTC)
        order, new = await store.note_round(uow.conn, round_, now)
        if not new:
            return  # the same allocations again (re-emitted with a new event id)
        if order.may_pick:
            await planner.plan_round(uow, round_, self.layout, now, envelope)
        elif not order.cancelled:
            log.debug("picking.waiting_for_confirmation", round_id=round_.round_id)

    async def on_order_cancelled(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, OrderCancelled)
        now = datetime.now(UTC)
        await store.note_cancelled(uow.conn, message.order_id, now)
        cancelled = await store.cancel_unfinished(uow.conn, message.order_id, now)
        if cancelled:
            # the order service refuses a cancellation once picking started: this one was
            # decided before our task_created reached it
            log.warning("picking.tasks_cancelled", task_ids=cancelled)

    async def on_confirm_pick(self, uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
        """A handheld's confirmation over Kafka closes one item: ``quantity_picked`` units
        were found; fewer than remain means the rest is short. A mis-pick is recorded as
        rejected and logged — never dead-lettered: the record itself is fine."""
        assert isinstance(message, ConfirmPick)
        request = scans.ScanRequest(
            confirmation_id=message.confirmation_id,
            task_id=message.task_id,
            scan=domain.Scan(
                sku=message.sku,
                location=message.location,
                quantity=message.quantity_picked,
                picker_id=message.picker_id,
                line_id=message.line_id,
                closes_item=True,
            ),
            source="command",
        )
        await scans.confirm_scans(uow, [request], now=datetime.now(UTC), cause=envelope)


def build(layout: Layout) -> dict[str, Handler]:
    return PickingHandlers(layout).handlers()
