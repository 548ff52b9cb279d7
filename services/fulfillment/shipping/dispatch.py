"""Ship one packed shipment of a placed order: quote, choose, buy the label, dispatch.

All in the caller's unit of work: the label, the tracking numbers, the shipment's new
status, the milestones and both events commit together or not at all. The carrier is
called at once; what the dispatch writes is queued in the run's :class:`Writes`, for the
handler to write with the rest of its run. The purchase is keyed by the packing, so a
retry after a rollback or a crash gets the same label, and a warehouse's later allocation
round (another packing of the same order and warehouse) gets a label of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from services.fulfillment.shipping.calls import CarrierCalls
from services.fulfillment.shipping.carrier import CarrierAdapter, Label, LabelRequest, Place
from services.fulfillment.shipping.domain.rating import Parcel
from services.fulfillment.shipping.domain.shipment import label_key_for
from services.fulfillment.shipping.domain.shopping import SERVICE_LEVEL_DAYS, promised_by, shop
from services.fulfillment.shipping.network import Warehouse
from services.fulfillment.shipping.store import shipments as store
from services.fulfillment.shipping.store.shipments import OrderRow, ShipmentRow
from shared.runtime.external import RetryPolicy
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.runtime.writes import Writes
from shared.schemas import Envelope
from shared.schemas.common import Address
from shared.schemas.events.fulfillment import (
    LabelledPackage,
    LabelPurchased,
    Package,
    ShipmentDispatched,
    ShippedPackage,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class Dispatched:
    """A shipment the carrier has just collected, for whoever follows it next."""

    shipment: ShipmentRow
    label: Label
    origin: str
    destination: str


# queues its own writes with the dispatch's
DispatchHook = Callable[[Writes, Dispatched, Envelope], None]


class UnknownWarehouse(Exception):
    """Packed in a warehouse missing from seed/warehouses.json: a configuration problem."""


def _place(address: Address) -> Place:
    return Place(
        name=address.name,
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        postal_code=address.postal_code,
        country=address.country,
        region=address.region,
    )


def _parcel(package: Package) -> Parcel:
    return Parcel(
        package_id=package.package_id,
        length_mm=package.length_mm,
        width_mm=package.width_mm,
        height_mm=package.height_mm,
        weight_grams=package.weight_grams,
    )


class Dispatcher:
    def __init__(
        self,
        carrier: CarrierAdapter,
        warehouses: Mapping[str, Warehouse],
        *,
        retry: RetryPolicy,
        days_by_level: Mapping[str, int] = SERVICE_LEVEL_DAYS,
        on_dispatch: DispatchHook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.calls = CarrierCalls(carrier, retry)
        self.warehouses = warehouses
        self.days_by_level = days_by_level
        self.on_dispatch = on_dispatch
        self.clock = clock

    async def ship(
        self,
        uow: UnitOfWork,
        writes: Writes,
        cause: Envelope,
        order: OrderRow,
        shipment: ShipmentRow,
    ) -> None:
        assert order.placed_at and order.ship_to and order.service_level, "order not placed"
        warehouse = self.warehouses.get(shipment.warehouse_id)
        if warehouse is None:
            raise UnknownWarehouse(f"no ship-from address for {shipment.warehouse_id!r}")
        now = self.clock()
        request = LabelRequest(
            reference=order.order_id,
            ship_from=warehouse.place(),
            ship_to=_place(order.ship_to),
            parcels=tuple(_parcel(p) for p in shipment.packages),
            ship_date=now.date(),
            recipient_email=order.customer.email if order.customer else None,
        )
        quotes = await self.calls.rates(writes, cause, shipment, request)
        deadline = promised_by(order.placed_at.date(), order.service_level, self.days_by_level)
        choice = shop(quotes, deadline)
        key = label_key_for(shipment.packing_id)
        label = await self.calls.buy_label(writes, cause, shipment, request, choice.quote, key)
        if label.estimated_delivery > deadline:
            log.warning(
                "shipping.promise_missed",
                shipment_id=shipment.shipment_id,
                service_level=order.service_level,
                promised_by=deadline.isoformat(),
                estimated_delivery=label.estimated_delivery.isoformat(),
            )
        store.record_label(writes, shipment, key, label, choice)
        purchased = await self._emit_label_purchased(uow, cause, shipment, label, now)
        dispatched = await self._emit_dispatched(uow, cause, shipment, label, now)
        store.add_milestone(writes, shipment.shipment_id, "label_purchased", purchased.id)
        store.add_milestone(writes, shipment.shipment_id, "dispatched", dispatched.id)
        if self.on_dispatch is not None:
            origin = f"{warehouse.city}, {warehouse.region}"
            destination = f"{order.ship_to.city}, {order.ship_to.country}"
            parcel = Dispatched(shipment, label, origin, destination)
            self.on_dispatch(writes, parcel, dispatched)

    async def _emit_label_purchased(
        self, uow: UnitOfWork, cause: Envelope, shipment: ShipmentRow, label: Label, now: datetime
    ) -> Envelope:
        return await uow.emit(
            LabelPurchased(
                order_id=shipment.order_id,
                occurred_at=now,
                shipment_id=shipment.shipment_id,
                carrier=label.carrier,
                tracking_number=label.tracking_number,
                service=label.service,
                packages=[
                    LabelledPackage(package_id=package_id, tracking_number=number)
                    for package_id, number in label.package_tracking.items()
                ],
                label_url=label.label_url,
                cost=label.cost,
            ),
            cause=cause,
        )

    async def _emit_dispatched(
        self, uow: UnitOfWork, cause: Envelope, shipment: ShipmentRow, label: Label, now: datetime
    ) -> Envelope:
        # the simulated carrier collects at once; a real one would report a pickup scan
        return await uow.emit(
            ShipmentDispatched(
                order_id=shipment.order_id,
                occurred_at=now,
                shipment_id=shipment.shipment_id,
                carrier=label.carrier,
                tracking_number=label.tracking_number,
                warehouse_id=shipment.warehouse_id,
                backorder_round=shipment.backorder_round,
                service=label.service,
                estimated_delivery=label.estimated_delivery,
                packages=[
                    ShippedPackage(
                        **p.model_dump(), tracking_number=label.package_tracking[p.package_id]
                    )
                    for p in shipment.packages
                ],
            ),
            cause=cause,
        )
