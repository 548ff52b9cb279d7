"""Carrier scans: finding a shipment by any of its tracking numbers, recording each scan
once per carrier event id, and the webhook's receipts (kept for the replay window only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from services.fulfillment.shipping.store.shipments import (
    ShipmentRow,
    shipment_columns,
    shipment_from_record,
)
from shared.schemas.events.fulfillment import CarrierUpdate


async def find_by_tracking_number(
    conn: asyncpg.Connection, carrier: str, tracking_number: str
) -> ShipmentRow | None:
    """By the carrier's master or package number; another carrier's numbers are unknown."""
    r = await conn.fetchrow(
        f"""SELECT {shipment_columns("s")}
              FROM tracking_numbers t JOIN shipments s USING (shipment_id)
             WHERE t.tracking_number = $1 AND t.carrier = $2""",
        tracking_number,
        carrier,
    )
    return shipment_from_record(r) if r else None


async def lock_by_tracking_numbers(
    conn: asyncpg.Connection, numbers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], ShipmentRow]:
    """The shipments of (carrier, tracking number) pairs, locked in shipment_id order, by
    pair; a number the carrier never issued us is left out."""
    pairs = sorted(set(numbers))
    rows = await conn.fetch(
        f"""SELECT t.carrier AS scanned_carrier, t.tracking_number AS scanned_number,
                   {shipment_columns("s")}
              FROM unnest($1::text[], $2::text[]) AS q (carrier, tracking_number)
              JOIN tracking_numbers t
                ON t.tracking_number = q.tracking_number AND t.carrier = q.carrier
              JOIN shipments s ON s.shipment_id = t.shipment_id
             ORDER BY s.shipment_id
               FOR UPDATE OF s""",
        [carrier for carrier, _ in pairs],
        [number for _, number in pairs],
    )
    return {(r["scanned_carrier"], r["scanned_number"]): shipment_from_record(r) for r in rows}


async def record_scans(
    conn: asyncpg.Connection, scans: Sequence[tuple[CarrierUpdate, str, str]]
) -> set[tuple[str, str]]:
    """Record (scan, shipment id, command id) in one statement, one scan per carrier event
    id; the (carrier, carrier event id) of those not recorded before."""
    if not scans:
        return set()
    updates = [update for update, _, _ in scans]
    rows = await conn.fetch(
        """INSERT INTO tracking_scans (carrier, carrier_event_id, shipment_id,
                                       tracking_number, status, location, description,
                                       estimated_delivery, occurred_at, command_id)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                $6::text[], $7::text[], $8::date[], $9::timestamptz[],
                                $10::text[])
           ON CONFLICT (carrier, carrier_event_id) DO NOTHING
        RETURNING carrier, carrier_event_id""",
        [u.carrier for u in updates],
        [u.carrier_event_id for u in updates],
        [shipment_id for _, shipment_id, _ in scans],
        [u.tracking_number for u in updates],
        [u.status for u in updates],
        [u.location for u in updates],
        [u.description for u in updates],
        [u.estimated_delivery for u in updates],
        [u.occurred_at for u in updates],
        [command_id for _, _, command_id in scans],
    )
    return {(r["carrier"], r["carrier_event_id"]) for r in rows}


async def record_webhook(
    conn: asyncpg.Connection,
    *,
    carrier: str,
    webhook_id: str,
    signed_at: datetime,
    carrier_event_id: str,
    tracking_number: str,
    body_sha256: str,
    request_id: str,
) -> bool:
    """False if this message (webhook id) or this scan (carrier event id) was accepted
    before: a carrier's retry, or a replay."""
    inserted = await conn.fetchval(
        """INSERT INTO webhook_receipts (carrier, webhook_id, signed_at, carrier_event_id,
                                         tracking_number, body_sha256, request_id)
           SELECT $1, $2, $3, $4, $5, $6, $7
            WHERE NOT EXISTS (SELECT 1 FROM tracking_scans
                               WHERE carrier = $1 AND carrier_event_id = $4)
           ON CONFLICT DO NOTHING RETURNING 1""",
        carrier,
        webhook_id,
        signed_at,
        carrier_event_id,
        tracking_number,
        body_sha256,
        request_id,
    )
    return inserted is not None


async def purge_webhook_receipts(
    conn: asyncpg.Connection, signed_before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` receipts signed before ``signed_before`` (rows another
    transaction holds are left for the next call); how many went."""
    status = await conn.execute(
        """DELETE FROM webhook_receipts
            WHERE (carrier, webhook_id) IN (
                  SELECT carrier, webhook_id FROM webhook_receipts
                   WHERE signed_at < $1
                   ORDER BY signed_at
                   LIMIT $2
                     FOR UPDATE SKIP LOCKED)""",
        signed_before,
        limit,
    )
    return int(status.split()[-1])
