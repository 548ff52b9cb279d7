"""Carrier scans: finding a shipment by any of its tracking numbers, recording each scan
once per carrier event id, and the webhook's receipts."""

from __future__ import annotations

import asyncpg

from services.fulfillment.shipping.domain.shipment import ScanOutcome
from services.fulfillment.shipping.store.shipments import (
    ShipmentRow,
    shipment_columns,
    shipment_from_record,
)
from shared.schemas.events.fulfillment import CarrierUpdate


async def find_by_tracking_number(
    conn: asyncpg.Connection, carrier: str, tracking_number: str, *, lock: bool = False
) -> ShipmentRow | None:
    """By the carrier's master or package number; another carrier's numbers are unknown."""
    r = await conn.fetchrow(
        f"""SELECT {shipment_columns("s")}
              FROM tracking_numbers t JOIN shipments s USING (shipment_id)
             WHERE t.tracking_number = $1 AND t.carrier = $2
             {"FOR UPDATE OF s" if lock else ""}""",
        tracking_number,
        carrier,
    )
    return shipment_from_record(r) if r else None


async def record_scan(
    conn: asyncpg.Connection,
    update: CarrierUpdate,
    shipment_id: str,
    command_id: str,
    outcome: ScanOutcome,
) -> bool:
    """Record the scan and the shipment as it leaves it, in one statement; False (and
    nothing changed) if this carrier event id was recorded before."""
    changed = await conn.fetchval(
        """WITH scan AS (
               INSERT INTO tracking_scans (carrier, carrier_event_id, shipment_id,
                                           tracking_number, status, location, description,
                                           estimated_delivery, occurred_at, command_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (carrier, carrier_event_id) DO NOTHING
               RETURNING shipment_id
           )
           UPDATE shipments s
              SET status = $11, estimated_delivery = $12, last_scan_at = $13, updated_at = now()
             FROM scan
            WHERE s.shipment_id = scan.shipment_id
        RETURNING 1""",
        update.carrier,
        update.carrier_event_id,
        shipment_id,
        update.tracking_number,
        update.status,
        update.location,
        update.description,
        update.estimated_delivery,
        update.occurred_at,
        command_id,
        outcome.tracking.status,
        outcome.tracking.estimated_delivery,
        outcome.tracking.last_scan_at,
    )
    return changed is not None


async def record_webhook(
    conn: asyncpg.Connection,
    *,
    carrier: str,
    carrier_event_id: str,
    tracking_number: str,
    body_sha256: str,
    request_id: str,
) -> bool:
    """False if this carrier event id was accepted before (a carrier's retry)."""
    inserted = await conn.fetchval(
        """INSERT INTO webhook_receipts (carrier, carrier_event_id, tracking_number,
                                         body_sha256, request_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (carrier, carrier_event_id) DO NOTHING RETURNING 1""",
        carrier,
        carrier_event_id,
        tracking_number,
        body_sha256,
        request_id,
    )
    return inserted is not None
