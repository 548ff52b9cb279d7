"""Order and packing events in → shipments out; carrier updates in → tracking events out.

``order.placed`` and ``packing.packed`` travel on different topics, so either may come
first. Both lock the order's row, so they meet there one after the other: whichever
comes second finds the other's facts and ships.

Set-based (:class:`Batched`): a run of either locks its orders and shipments in a query
or two, calls the carrier record by record in the run's order, and writes what the run
changed at its end (``shared/runtime/writes.py``). A run leaves what the records one by one
would have left, with the same events in the same order; a record repeated within the
run finds what the first one did, in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from services.fulfillment.shipping import tracking
from services.fulfillment.shipping.dispatch import Dispatcher
from services.fulfillment.shipping.domain.shipment import ShipmentStatus, shipment_id_for
from services.fulfillment.shipping.store import shipments as store
from services.fulfillment.shipping.store.shipments import OrderRow, ShipmentRow
from shared.runtime.consumer import Batched, Handler, run_of
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.runtime.writes import Writes
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import CarrierUpdate, Packed
from shared.schemas.events.order import OrderCancelled, OrderPlaced

log = get_logger(__name__)


class ShippingHandlers:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def handlers(self) -> dict[str, Handler]:
        return {
            OrderPlaced.TYPE: Batched(self.on_orders_placed),
            OrderCancelled.TYPE: self.on_order_cancelled,
            Packed.TYPE: Batched(self.on_packed),
            CarrierUpdate.TYPE: Batched(tracking.on_carrier_updates),
        }

    async def on_orders_placed(
        self, uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
    ) -> None:
        """Remember what a label needs; ship whatever was packed before it arrived."""
        placements = run_of(OrderPlaced, events)
        firsts: dict[str, OrderPlaced] = {}  # each order's first order.placed in the run
        for message, _ in placements:
            firsts.setdefault(message.order_id, message)
        inserted = await store.insert_placed(uow.conn, list(firsts.values()))
        placed, awaiting = await self._place_known_orders(
            uow, [m for m in firsts.values() if m.order_id not in inserted]
        )
        writes = Writes()
        seen: set[str] = set()
        for message, envelope in placements:
            repeat = message.order_id in seen
            seen.add(message.order_id)
            if not repeat and message.order_id in inserted:
                continue  # the first news of this order: nothing can have been packed yet
            if repeat or message.order_id not in placed:
                log.info("shipping.placed_again", order_id=message.order_id)
                continue
            order = placed[message.order_id]
            if order.cancelled:
                continue
            for shipment in awaiting.get(message.order_id, []):
                await self.dispatcher.ship(uow, writes, envelope, order, shipment)
        await writes.flush(uow.conn)

    @staticmethod
    async def _place_known_orders(
        uow: UnitOfWork, known: list[OrderPlaced]
    ) -> tuple[dict[str, OrderRow], dict[str, list[ShipmentRow]]]:
        """Orders that had a row already (packed or cancelled first, or placed before):
        those placed now, and the shipments of those not cancelled that wait for them."""
        if not known:
            return {}, {}
        orders = await store.lock_orders(uow.conn, (m.order_id for m in known))
        placed = await store.record_placed(
            uow.conn, [m for m in known if not orders[m.order_id].placed]
        )
        shipping = [order_id for order_id, order in placed.items() if not order.cancelled]
        awaiting: dict[str, list[ShipmentRow]] = {}
        if shipping:
            for shipment in await store.lock_awaiting(uow.conn, shipping):
                awaiting.setdefault(shipment.order_id, []).append(shipment)
        return placed, awaiting

    async def on_order_cancelled(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        """No label for a cancelled order; what the carrier already has, it keeps."""
        assert isinstance(message, OrderCancelled)
        await store.lock_order(uow.conn, message.order_id)
        await store.record_cancelled(uow.conn, message.order_id)
        writes = Writes()
        for shipment in await store.lock_awaiting(uow.conn, [message.order_id]):
            store.set_status(writes, shipment.shipment_id, ShipmentStatus.CANCELLED)
        await writes.flush(uow.conn)
        if shipped := await store.count_with_carrier(uow.conn, message.order_id):
            log.warning("shipping.cancelled_after_dispatch", shipments=shipped)

    async def on_packed(self, uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
        """One shipment per packing: ship it now if the order is placed, else later."""
        packings = run_of(Packed, events)
        orders = await store.lock_or_create_orders(uow.conn, (m.order_id for m, _ in packings))
        shipments, new = await self._lock_or_create_shipments(uow, packings)
        writes = Writes()
        for message, envelope in packings:
            shipment_id = shipment_id_for(message.packing_id)
            if shipment_id in new:
                new.remove(shipment_id)  # a later one in the run is a repeat
            else:
                log.info("shipping.packed_again", packing_id=message.packing_id)
            shipments[shipment_id] = await self._ship_if_placed(
                uow, writes, envelope, orders[message.order_id], shipments[shipment_id]
            )
        await writes.flush(uow.conn)

    @staticmethod
    async def _lock_or_create_shipments(
        uow: UnitOfWork, packings: list[tuple[Packed, Envelope]]
    ) -> tuple[dict[str, ShipmentRow], set[str]]:
        """The run's shipments, locked, by id; and the ids of those created now."""
        firsts: dict[str, tuple[str, Packed, str]] = {}  # each packing's first record
        for message, envelope in packings:
            shipment_id = shipment_id_for(message.packing_id)
            firsts.setdefault(shipment_id, (shipment_id, message, envelope.id))
        shipments = await store.insert_shipments(uow.conn, list(firsts.values()))
        new = set(shipments)
        if packed_before := firsts.keys() - new:
            shipments.update(await store.lock_shipments(uow.conn, packed_before))
        assert shipments.keys() == firsts.keys()
        return shipments, new

    async def _ship_if_placed(
        self,
        uow: UnitOfWork,
        writes: Writes,
        cause: Envelope,
        order: OrderRow,
        shipment: ShipmentRow,
    ) -> ShipmentRow:
        """The shipment as the packing leaves it (only its status matters to the rest of
        the run)."""
        if shipment.status != ShipmentStatus.AWAITING_ORDER:
            return shipment  # labelled (or cancelled) before: a redelivery buys nothing
        if order.cancelled:
            store.set_status(writes, shipment.shipment_id, ShipmentStatus.CANCELLED)
            log.warning("shipping.packed_after_cancellation", packing_id=shipment.packing_id)
            return dataclasses.replace(shipment, status=ShipmentStatus.CANCELLED)
        if not order.placed:
            log.info("shipping.waiting_for_order", packing_id=shipment.packing_id)
            return shipment
        await self.dispatcher.ship(uow, writes, cause, order, shipment)
        return dataclasses.replace(shipment, status=ShipmentStatus.DISPATCHED)


def build(dispatcher: Dispatcher) -> dict[str, Handler]:
    return ShippingHandlers(dispatcher).handlers()
