"""Reads for staff and debugging: a shipment with its label, packages and scans."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from shared.schemas.common import Money
from shared.schemas.events.fulfillment import ItemCount


class PackageView(BaseModel):
    package_id: str
    box_code: str
    length_mm: int
    width_mm: int
    height_mm: int
    weight_grams: int
    items: list[ItemCount]
    tracking_number: str | None


class LabelView(BaseModel):
    carrier: str
    service: str
    tracking_number: str
    label_url: str
    cost: Money
    estimated_delivery: date
    idempotency_key: str
    purchased_at: datetime


class ScanView(BaseModel):
    carrier_event_id: str
    tracking_number: str
    status: str
    location: str | None
    description: str
    estimated_delivery: date | None
    occurred_at: datetime
    received_at: datetime


class ShipmentView(BaseModel):
    shipment_id: str
    order_id: str
    packing_id: str
    warehouse_id: str
    backorder_round: str | None  # None: the order's reservation round
    status: str
    carrier: str | None
    service: str | None
    tracking_number: str | None
    estimated_delivery: date | None
    promised_by: date | None
    meets_promise: bool | None
    packages: list[PackageView]
    label: LabelView | None
    scans: list[ScanView]
    created_at: datetime
    updated_at: datetime


async def _view(conn: asyncpg.Connection, r: asyncpg.Record) -> ShipmentView:
    shipment_id = r["shipment_id"]
    numbers = {
        n["package_id"]: n["tracking_number"]
        for n in await conn.fetch(
            """SELECT package_id, tracking_number FROM tracking_numbers
                WHERE shipment_id = $1 AND package_id IS NOT NULL""",
            shipment_id,
        )
    }
    label = await conn.fetchrow("SELECT * FROM labels WHERE shipment_id = $1", shipment_id)
    scans = await conn.fetch(
        """SELECT * FROM tracking_scans WHERE shipment_id = $1
            ORDER BY occurred_at, received_at""",
        shipment_id,
    )
    packages: list[dict[str, Any]] = json.loads(r["packages"])
    return ShipmentView(
        **{k: r[k] for k in ShipmentView.model_fields if k not in ("packages", "label", "scans")},
        packages=[PackageView(**p, tracking_number=numbers.get(p["package_id"])) for p in packages],
        label=LabelView(
            **{k: label[k] for k in LabelView.model_fields if k != "cost"},
            cost=Money(amount_minor=label["cost_minor"], currency=label["currency"]),
        )
        if label
        else None,
        scans=[ScanView(**{k: s[k] for k in ScanView.model_fields}) for s in scans],
    )


async def shipment(conn: asyncpg.Connection, shipment_id: str) -> ShipmentView | None:
    r = await conn.fetchrow("SELECT * FROM shipments WHERE shipment_id = $1", shipment_id)
    return await _view(conn, r) if r else None


async def order_shipments(conn: asyncpg.Connection, order_id: str) -> list[ShipmentView]:
    rows = await conn.fetch(
        "SELECT * FROM shipments WHERE order_id = $1 ORDER BY created_at, shipment_id", order_id
    )
    return [await _view(conn, r) for r in rows]
