"""Carrier tracking: a scan from the webhook (or the simulated carrier) is queued as a
``shipping.carrier_update`` command through the outbox; the consumer turns each new scan
into events. Queuing first means a carrier's call is answered as soon as the scan is
safely in PostgreSQL, and every scan takes the same path, whoever reported it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.fulfillment.shipping.domain.shipment import (
    Scan,
    ScanOutcome,
    Tracking,
    apply_scan,
    exception_reason,
)
from services.fulfillment.shipping.store import shipments as shipment_store
from services.fulfillment.shipping.store import tracking as store
from services.fulfillment.shipping.store.shipments import ShipmentRow
from services.fulfillment.shipping.webhook import CarrierScan, Delivery
from shared.runtime.consumer import run_of
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.runtime.writes import Writes
from shared.schemas import Envelope, Message
from shared.schemas.events.fulfillment import (
    CarrierUpdate,
    ShipmentDelivered,
    ShipmentException,
    TrackingUpdated,
)

log = get_logger(__name__)

RECEIPTS_PURGED_PER_CALL = 100


async def on_carrier_updates(uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
    """Every new scan → ``shipment.tracking_updated``; plus ``shipment.delivered`` once, or
    ``shipment.exception`` for a problem before delivery.

    Set-based: the run's shipments are locked in one query and its new scans recorded in
    one statement; each scan then moves its shipment in memory, in the run's order, and
    the shipments are saved as the run leaves them."""
    updates = run_of(CarrierUpdate, events)
    shipments = await store.lock_by_tracking_numbers(
        uow.conn, ((u.carrier, u.tracking_number) for u, _ in updates)
    )
    new = await _record_new_scans(uow, updates, shipments)
    tracked: dict[str, Tracking] = {}  # the shipments the run moved, as it leaves them
    writes = Writes()
    for update, envelope in updates:
        shipment = shipments.get((update.carrier, update.tracking_number))
        if shipment is None:
            log.warning(
                "shipping.unknown_tracking_number",
                carrier=update.carrier,
                tracking_number=update.tracking_number,
            )
            continue
        if (update.carrier, update.carrier_event_id) not in new:
            log.info("shipping.scan_again", carrier_event_id=update.carrier_event_id)
            continue
        new.remove((update.carrier, update.carrier_event_id))  # a later one is a repeat
        scan = Scan(update.status, update.occurred_at, update.estimated_delivery)
        current = tracked.get(shipment.shipment_id, shipment.tracking())
        outcome = apply_scan(current, scan)
        tracked[shipment.shipment_id] = outcome.tracking
        await _emit_scan_events(uow, writes, update, envelope, shipment, outcome)
    for shipment_id, tracking in tracked.items():
        shipment_store.save_tracking(writes, shipment_id, tracking)
    await writes.flush(uow.conn)


async def _record_new_scans(
    uow: UnitOfWork,
    updates: list[tuple[CarrierUpdate, Envelope]],
    shipments: dict[tuple[str, str], ShipmentRow],
) -> set[tuple[str, str]]:
    """Record the first of the run's scans per carrier event id, for a shipment we know;
    the (carrier, carrier event id) of those not recorded before."""
    firsts: dict[tuple[str, str], tuple[CarrierUpdate, str, str]] = {}
    for update, envelope in updates:
        shipment = shipments.get((update.carrier, update.tracking_number))
        if shipment is not None:
            key = (update.carrier, update.carrier_event_id)
            firsts.setdefault(key, (update, shipment.shipment_id, envelope.id))
    return await store.record_scans(uow.conn, list(firsts.values()))


async def _emit_scan_events(
    uow: UnitOfWork,
    writes: Writes,
    update: CarrierUpdate,
    cause: Envelope,
    shipment: ShipmentRow,
    outcome: ScanOutcome,
) -> None:
    assert shipment.carrier is not None and shipment.tracking_number is not None
    about = {
        "order_id": shipment.order_id,
        "shipment_id": shipment.shipment_id,
        "carrier": shipment.carrier,
        "occurred_at": update.occurred_at,
    }
    eta = update.estimated_delivery or outcome.tracking.estimated_delivery
    await uow.emit(
        TrackingUpdated(
            **about,
            tracking_number=update.tracking_number,  # the package's, if it was scanned alone
            status=update.status,
            carrier_event_id=update.carrier_event_id,
            location=update.location,
            description=update.description,
            estimated_delivery=eta,
        ),
        cause=cause,
    )
    master = shipment.tracking_number
    if outcome.delivered:
        delivered = await uow.emit(
            ShipmentDelivered(**about, tracking_number=master, location=update.location),
            cause=cause,
        )
        shipment_store.add_milestone(writes, shipment.shipment_id, "delivered", delivered.id)
    if outcome.exception is not None:
        await uow.emit(
            ShipmentException(
                **about,
                tracking_number=master,
                status=outcome.exception,
                reason=exception_reason(outcome.exception, update.description),
                estimated_delivery=eta,
            ),
            cause=cause,
        )


@dataclass(frozen=True)
class WebhookOutcome:
    result: Literal["accepted", "duplicate", "unknown_tracking_number"]
    order_id: str | None = None
    shipment_id: str | None = None


async def accept_webhook_scan(
    uow: UnitOfWork,
    carrier: str,
    scan: CarrierScan,
    body: bytes,
    request: Envelope,
    delivery: Delivery,
    *,
    purge_signed_before: datetime,
) -> WebhookOutcome:
    """Queue a carrier's scan as a command, once per message (webhook id) and per carrier
    event id. Receipts signed before ``purge_signed_before`` are deleted on the way, up to
    ``RECEIPTS_PURGED_PER_CALL``: more than one per call, so old rows cannot pile up."""
    await store.purge_webhook_receipts(uow.conn, purge_signed_before, RECEIPTS_PURGED_PER_CALL)
    shipment = await store.find_by_tracking_number(uow.conn, carrier, scan.tracking_number)
    if shipment is None:
        return WebhookOutcome("unknown_tracking_number")
    first = await store.record_webhook(
        uow.conn,
        carrier=carrier,
        webhook_id=delivery.msg_id,
        signed_at=delivery.signed_at,
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
