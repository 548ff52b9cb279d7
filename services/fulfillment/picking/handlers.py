"""Order, inventory and handheld messages in → picking rules → events out.

``order.confirmed`` and ``inventory.reserved`` come on different topics, in either order:
each is noted under the order's row lock, then whatever rounds the order may now have
picked are planned (``planner``). A cancelled order is never planned, and its unfinished
tasks are cancelled. The hot events — confirmations and allocation rounds — are applied
a run at a time: one locking read of the run's orders, one of their rounds, the rules in
memory record by record, one write per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from services.fulfillment.picking import domain, planner, scans, store
from services.fulfillment.picking.domain import Allocated, Layout, Round
from shared.runtime.consumer import Batched, Handler, record_context
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import ConfirmPick, PickTaskCancelled
from shared.schemas.events.inventory import Allocation, BackorderAllocated, InventoryReserved
from shared.schemas.events.order import OrderCancelled, OrderConfirmed

log = get_logger(__name__)

AllocationEvent = OrderConfirmed | InventoryReserved | BackorderAllocated


def _allocated(allocations: list[Allocation]) -> list[Allocated]:
    return [Allocated(a.line_id, a.sku, a.warehouse_id, a.quantity) for a in allocations]


def _round(message: InventoryReserved | BackorderAllocated) -> Round:
    if isinstance(message, InventoryReserved):
        round_id = message.reservation_id  # the first round is named after the reservation
    else:
        round_id = message.round_id  # the contract's id: every service names it alike
    allocations = _allocated(message.allocations)
    return Round(message.order_id, round_id, message.reservation_id, allocations)


def _noted_order(message: Message) -> str | None:
    """The order the event is noted for; None: nothing to note (every line backordered:
    tasks come with the backorder allocation)."""
    assert isinstance(message, AllocationEvent)
    if isinstance(message, OrderConfirmed) or message.allocations:
        return message.order_id
    return None


class PickingHandlers:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def handlers(self) -> dict[str, Handler]:
        # one Batched for the three: a poll interleaves order.events and inventory.events
        allocation = Batched(self.on_allocation_events)
        return {
            OrderConfirmed.TYPE: allocation,
            OrderCancelled.TYPE: self.on_order_cancelled,
            InventoryReserved.TYPE: allocation,
            BackorderAllocated.TYPE: allocation,
            ConfirmPick.TYPE: self.on_confirm_pick,
        }

    async def on_allocation_events(
        self, uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
    ) -> None:
        """Confirmations and allocation rounds: each noted in run order, then the rounds
        that may be picked planned in that order."""
        order_ids = {o for o in (_noted_order(m) for m, _ in events) if o is not None}
        if not order_ids:
            return
        now = datetime.now(UTC)
        book = await store.load_book(uow.conn, order_ids)
        to_plan: list[tuple[Round, Envelope]] = []
        for message, envelope in events:
            assert isinstance(message, AllocationEvent)
            with record_context(message, envelope):
                to_plan += [(r, envelope) for r in self._note(book, message)]
        await planner.plan_rounds(uow, to_plan, book, self.layout, now)
        await store.save_book(uow.conn, book, now)

    def _note(self, book: domain.OrderBook, message: AllocationEvent) -> list[Round]:
        """Note the event; the rounds it lets be planned now."""
        if isinstance(message, OrderConfirmed):
            return self._confirmed(book, message)
        round_ = _round(message)
        if not round_.allocations:
            return []  # everything backordered: tasks come with the backorder allocation
        noted = book.note_round(round_)
        if not noted.new:
            return []  # the same allocations again (re-emitted with a new event id)
        if noted.order.may_pick:
            return [round_]
        if not noted.order.cancelled:
            log.debug("picking.waiting_for_confirmation", round_id=round_.round_id)
        return []

    def _confirmed(self, book: domain.OrderBook, message: OrderConfirmed) -> list[Round]:
        confirmation = domain.Confirmation(message.reservation_id, tuple(message.backordered_skus))
        confirmed = book.confirm(message.order_id, confirmation)
        if confirmed.order.cancelled:
            log.info("picking.confirmed_after_cancel", detail="a cancelled order gets no tasks")
            return []
        if message.backordered_skus:
            log.info("picking.backordered_skus_wait", skus=message.backordered_skus)
        return confirmed.rounds

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
            log.warning("picking.tasks_cancelled", task_ids=[t for t, _, _ in cancelled])
        for task_id, warehouse_id, was in cancelled:
            if was == "held":
                continue  # still in its trip: never announced, so nothing to withdraw
            withdrawn = PickTaskCancelled(
                order_id=message.order_id,
                occurred_at=now,
                task_id=task_id,
                warehouse_id=warehouse_id,
            )
            await uow.emit(withdrawn, cause=envelope)

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
