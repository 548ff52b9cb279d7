"""Order and packing events in → shipments out; carrier updates in → tracking events out.
One unit of work per message (the runtime's).

``order.placed`` and ``packing.packed`` travel on different topics, so either may come
first. Both lock the order's row, so they meet there one after the other: whichever
comes second finds the other's facts and ships.
"""

from __future__ import annotations

from services.fulfillment.shipping import tracking
from services.fulfillment.shipping.dispatch import Dispatcher
from services.fulfillment.shipping.domain.shipment import ShipmentStatus, shipment_id_for
from services.fulfillment.shipping.store import shipments as store
from shared.runtime.consumer import Handler
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import CarrierUpdate, Packed
from shared.schemas.events.order import OrderCancelled, OrderPlaced

log = get_logger(__name__)


class ShippingHandlers:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def handlers(self) -> dict[str, Handler]:
        return {
            OrderPlaced.TYPE: self.on_order_placed,
            OrderCancelled.TYPE: self.on_order_cancelled,
            Packed.TYPE: self.on_packed,
            CarrierUpdate.TYPE: tracking.on_carrier_update,
        }

    async def on_order_placed(self, uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
        """Remember what a label needs; ship whatever was packed before it arrived."""
        assert isinstance(message, OrderPlaced)
        if await store.insert_placed(uow.conn, message):
            return  # the first news of this order: nothing can have been packed yet
        order = await store.lock_order(uow.conn, message.order_id)
        if order.placed:
            log.info("shipping.placed_again", order_id=message.order_id)
            return
        order = await store.record_placed(uow.conn, message)
        if order.cancelled:
            return
        for shipment in await store.lock_awaiting(uow.conn, message.order_id):
            await self.dispatcher.ship(uow, envelope, order, shipment)

    async def on_order_cancelled(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        """No label for a cancelled order; what the carrier already has, it keeps."""
        assert isinstance(message, OrderCancelled)
        await store.lock_order(uow.conn, message.order_id)
        await store.record_cancelled(uow.conn, message.order_id)
        for shipment in await store.lock_awaiting(uow.conn, message.order_id):
            await store.set_status(uow.conn, shipment.shipment_id, ShipmentStatus.CANCELLED)
        if shipped := await store.count_with_carrier(uow.conn, message.order_id):
            log.warning("shipping.cancelled_after_dispatch", shipments=shipped)

    async def on_packed(self, uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
        """One shipment per packing: ship it now if the order is placed, else later."""
        assert isinstance(message, Packed)
        order = await store.lock_order(uow.conn, message.order_id)
        shipment_id = shipment_id_for(message.packing_id)
        shipment = await store.insert_shipment(uow.conn, shipment_id, message, envelope.id)
        if shipment is None:
            log.info("shipping.packed_again", packing_id=message.packing_id)
            shipment = await store.lock_shipment(uow.conn, shipment_id)
            assert shipment is not None
        if shipment.status != ShipmentStatus.AWAITING_ORDER:
            return  # labelled (or cancelled) before: a redelivery buys nothing
        if order.cancelled:
            await store.set_status(uow.conn, shipment_id, ShipmentStatus.CANCELLED)
            log.warning("shipping.packed_after_cancellation", packing_id=message.packing_id)
            return
        if not order.placed:
            log.info("shipping.waiting_for_order", packing_id=message.packing_id)
            return
        await self.dispatcher.ship(uow, envelope, order, shipment)


def build(dispatcher: Dispatcher) -> dict[str, Handler]:
    return ShippingHandlers(dispatcher).handlers()
