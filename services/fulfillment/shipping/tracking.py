"""Carrier tracking: a scan from the webhook (or the simulated carrier) is queued as a
``shipping.carrier_update`` command through the outbox; the consumer turns each new scan
into events. Queuing first means a carrier's call is answered as soon as the scan is
safely in PostgreSQL, and every scan takes the same path, whoever reported it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from services.fulfillment.shipping.domain.shipment import Scan, apply_scan, exception_reason
from services.fulfillment.shipping.store import shipments as shipment_store
from services.fulfillment.shipping.store import tracking as store
from services.fulfillment.shipping.webhook import CarrierScan
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import (
    CarrierUpdate,
    ShipmentDelivered,
    ShipmentException,
    TrackingUpdated,
)

log = get_logger(__name__)


async def on_carrier_update(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Every new scan → ``shipment.tracking_updated``; plus ``shipment.delivered`` once, or
    ``shipment.exception`` for a problem before delivery."""
    assert isinstance(message, CarrierUpdate)
    shipment = await store.find_by_tracking_number(
        uow.conn, message.carrier, message.tracking_number, lock=True
    )
    if shipment is None:
        log.warning(
            "shipping.unknown_tracking_number",
            carrier=message.carrier,
            tracking_number=message.tracking_number,
        )
        return
    assert shipment.carrier is not None and shipment.tracking_number is not None
    scan = Scan(message.status, message.occurred_at, message.estimated_delivery)
    outcome = apply_scan(shipment.tracking(), scan)
    if not await store.record_scan(uow.conn, message, shipment.shipment_id, envelope.id, outcome):
        log.info("shipping.scan_again", carrier_event_id=message.carrier_event_id)
        return
    about = {
        "order_id": shipment.order_id,
        "shipment_id": shipment.shipment_id,
        "carrier": shipment.carrier,
        "occurred_at": message.occurred_at,
    }
    eta = message.estimated_delivery or outcome.tracking.estimated_delivery
    await uow.emit(
        TrackingUpdated(
            **about,
            tracking_number=message.tracking_number,  # the package's, if it was scanned alone
            status=message.status,
            carrier_event_id=message.carrier_event_id,
            location=message.location,
            description=message.description,
            estimated_delivery=eta,
        ),
        cause=envelope,
    )
    master = shipment.tracking_number
    if outcome.delivered:
        delivered = await uow.emit(
            ShipmentDelivered(**about, tracking_number=master, location=message.location),
            cause=envelope,
        )
        await shipment_store.add_milestones(
            uow.conn, shipment.shipment_id, [("delivered", delivered.id)]
        )
    if outcome.exception is not None:
        await uow.emit(
            ShipmentException(
                **about,
                tracking_number=master,
                status=outcome.exception,
                reason=exception_reason(outcome.exception, message.description),
                estimated_delivery=eta,
            ),
            cause=envelope,
        )


@dataclass(frozen=True)
class WebhookOutcome:
    result: Literal["accepted", "duplicate", "unknown_tracking_number"]
    order_id: str | None = None
    shipment_id: str | None = None


async def accept_webhook_scan(
    uow: UnitOfWork, carrier: str, scan: CarrierScan, body: bytes, request: Envelope
) -> WebhookOutcome:
    """Queue a carrier's scan as a command, once per carrier event id."""
    shipment = await store.find_by_tracking_number(uow.conn, carrier, scan.tracking_number)
    if shipment is None:
        return WebhookOutcome("unknown_tracking_number")
    first = await store.record_webhook(
        uow.conn,
        carrier=carrier,
        carrier_event_id=scan.carrier_event_id,
        tracking_number=scan.tracking_number,
        body_sha256=hashlib.sha256(body).hexdigest(),
        request_id=request.id,
    )
    if not first:
        return WebhookOutcome("duplicate", shipment.order_id, shipment.shipment_id)
    update = CarrierUpdate(order_id=shipment.order_id, carrier=carrier, **scan.model_dump())
    await uow.emit(update, cause=request)
    return WebhookOutcome("accepted", shipment.order_id, shipment.shipment_id)
