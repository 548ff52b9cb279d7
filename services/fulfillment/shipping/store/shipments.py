"""Orders as shipping knows them, shipments, their labels and milestones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from services.fulfillment.shipping.carrier import Label
from services.fulfillment.shipping.domain.shipment import ShipmentStatus, Tracking
from services.fulfillment.shipping.domain.shopping import Choice
from shared.schemas.common import Address, Customer
from shared.schemas.events.fulfillment import Package, Packed
from shared.schemas.events.order import OrderPlaced

# --- orders ---


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    placed_at: datetime | None
    service_level: str | None
    ship_to: Address | None
    customer: Customer | None
    cancelled: bool

    @property
    def placed(self) -> bool:
        return self.placed_at is not None


ORDER_COLUMNS = "order_id, placed_at, service_level, ship_to, customer, cancelled_at"


def _order(r: asyncpg.Record) -> OrderRow:
    return OrderRow(
        order_id=r["order_id"],
        placed_at=r["placed_at"],
        service_level=r["service_level"],
        ship_to=Address.model_validate_json(r["ship_to"]) if r["ship_to"] else None,
        customer=Customer.model_validate_json(r["customer"]) if r["customer"] else None,
        cancelled=r["cancelled_at"] is not None,
    )


async def lock_order(conn: asyncpg.Connection, order_id: str) -> OrderRow:
    """The order's row, locked (created empty if this is the first message about it):
    order.placed and packing.packed arrive on different topics and meet here."""
    select = f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = $1 FOR UPDATE"
    r = await conn.fetchrow(select, order_id)
    if r is None:
        r = await conn.fetchrow(
            f"""INSERT INTO orders (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING
                RETURNING {ORDER_COLUMNS}""",
            order_id,
        )
    if r is None:  # a concurrent transaction inserted it first, and has committed
        r = await conn.fetchrow(select, order_id)
    assert r is not None
    return _order(r)


def _placed_values(placed: OrderPlaced) -> tuple[object, ...]:
    return (
        placed.order_id,
        placed.occurred_at,
        placed.service_level,
        placed.shipping_address.model_dump_json(),
        placed.customer.model_dump_json(),
    )


async def insert_placed(conn: asyncpg.Connection, placed: OrderPlaced) -> bool:
    """The usual case in one statement: order.placed is the first news of the order.
    False if the order has a row already (placed before, or packed or cancelled first)."""
    inserted = await conn.fetchval(
        """INSERT INTO orders (order_id, placed_at, service_level, ship_to, customer)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
           ON CONFLICT (order_id) DO NOTHING RETURNING 1""",
        *_placed_values(placed),
    )
    return inserted is not None


async def record_placed(conn: asyncpg.Connection, placed: OrderPlaced) -> OrderRow:
    """What a label needs, on the locked row of an order not placed before."""
    r = await conn.fetchrow(
        f"""UPDATE orders SET placed_at = $2, service_level = $3, ship_to = $4::jsonb,
                   customer = $5::jsonb, updated_at = now()
             WHERE order_id = $1 AND placed_at IS NULL
         RETURNING {ORDER_COLUMNS}""",
        *_placed_values(placed),
    )
    assert r is not None, "record_placed needs the locked row of an unplaced order"
    return _order(r)


async def record_cancelled(conn: asyncpg.Connection, order_id: str) -> None:
    await conn.execute(
        """UPDATE orders SET cancelled_at = COALESCE(cancelled_at, now()), updated_at = now()
            WHERE order_id = $1""",
        order_id,
    )


# --- shipments ---


@dataclass(frozen=True)
class ShipmentRow:
    shipment_id: str
    packing_id: str
    order_id: str
    warehouse_id: str
    packages: list[Package]
    status: ShipmentStatus
    carrier: str | None
    tracking_number: str | None
    estimated_delivery: date | None
    last_scan_at: datetime | None

    def tracking(self) -> Tracking:
        return Tracking(self.status, self.estimated_delivery, self.last_scan_at)


SHIPMENT_COLUMNS = """shipment_id, packing_id, order_id, warehouse_id, packages, status,
                      carrier, tracking_number, estimated_delivery, last_scan_at"""


def shipment_columns(alias: str) -> str:
    """The columns qualified, for joins with tables that share some of their names."""
    return ", ".join(f"{alias}.{c.strip()}" for c in SHIPMENT_COLUMNS.split(","))


def shipment_from_record(r: asyncpg.Record) -> ShipmentRow:
    return ShipmentRow(
        shipment_id=r["shipment_id"],
        packing_id=r["packing_id"],
        order_id=r["order_id"],
        warehouse_id=r["warehouse_id"],
        packages=[Package.model_validate(p) for p in json.loads(r["packages"])],
        status=ShipmentStatus(r["status"]),
        carrier=r["carrier"],
        tracking_number=r["tracking_number"],
        estimated_delivery=r["estimated_delivery"],
        last_scan_at=r["last_scan_at"],
    )


async def insert_shipment(
    conn: asyncpg.Connection, shipment_id: str, packed: Packed, event_id: str
) -> ShipmentRow | None:
    """A new shipment awaiting its label (locked: it is ours until we commit); None if
    this packing has one already."""
    r = await conn.fetchrow(
        f"""INSERT INTO shipments (shipment_id, packing_id, order_id, warehouse_id, packages,
                                   packed_event_id, status)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, 'awaiting_order')
            ON CONFLICT (packing_id) DO NOTHING
         RETURNING {SHIPMENT_COLUMNS}""",
        shipment_id,
        packed.packing_id,
        packed.order_id,
        packed.warehouse_id,
        json.dumps([p.model_dump(mode="json") for p in packed.packages]),
        event_id,
    )
    return shipment_from_record(r) if r else None


async def lock_shipment(conn: asyncpg.Connection, shipment_id: str) -> ShipmentRow | None:
    r = await conn.fetchrow(
        f"SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE shipment_id = $1 FOR UPDATE",
        shipment_id,
    )
    return shipment_from_record(r) if r else None


async def lock_awaiting(conn: asyncpg.Connection, order_id: str) -> list[ShipmentRow]:
    """The order's shipments still waiting for order.placed (or a cancellation)."""
    rows = await conn.fetch(
        f"""SELECT {SHIPMENT_COLUMNS} FROM shipments
             WHERE order_id = $1 AND status = 'awaiting_order'
             ORDER BY shipment_id FOR UPDATE""",
        order_id,
    )
    return [shipment_from_record(r) for r in rows]


async def count_with_carrier(conn: asyncpg.Connection, order_id: str) -> int:
    value = await conn.fetchval(
        """SELECT count(*) FROM shipments
            WHERE order_id = $1 AND status NOT IN ('awaiting_order', 'cancelled')""",
        order_id,
    )
    return int(value)


async def set_status(conn: asyncpg.Connection, shipment_id: str, status: ShipmentStatus) -> None:
    await conn.execute(
        "UPDATE shipments SET status = $2, updated_at = now() WHERE shipment_id = $1",
        shipment_id,
        status,
    )


async def record_label(
    conn: asyncpg.Connection, shipment: ShipmentRow, key: str, label: Label, choice: Choice
) -> None:
    """The label, every tracking number it gives (the master has no package id), and the
    shipment dispatched with it: one statement, one round trip."""
    numbers = [(label.tracking_number, None), *((n, p) for p, n in label.package_tracking.items())]
    await conn.execute(
        """WITH label AS (
               INSERT INTO labels (shipment_id, idempotency_key, carrier, service,
                                   tracking_number, label_url, cost_minor, currency,
                                   estimated_delivery)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ), numbers AS (
               INSERT INTO tracking_numbers (tracking_number, shipment_id, carrier, package_id)
               SELECT n.tracking_number, $1, $3, n.package_id
                 FROM unnest($10::text[], $11::text[]) AS n (tracking_number, package_id)
           )
           UPDATE shipments
              SET status = 'dispatched', carrier = $3, service = $4, tracking_number = $5,
                  estimated_delivery = $9, promised_by = $12, meets_promise = $13,
                  updated_at = now()
            WHERE shipment_id = $1""",
        shipment.shipment_id,
        key,
        label.carrier,
        label.service,
        label.tracking_number,
        label.label_url,
        label.cost.amount_minor,
        label.cost.currency,
        label.estimated_delivery,
        [number for number, _ in numbers],
        [package_id for _, package_id in numbers],
        choice.promised_by,
        label.estimated_delivery <= choice.promised_by,
    )


async def add_milestones(
    conn: asyncpg.Connection, shipment_id: str, reached: list[tuple[str, str]]
) -> None:
    """(milestone, event id) pairs. No ON CONFLICT: a second label_purchased, dispatched
    or delivered for a shipment fails the transaction, and with it the events."""
    await conn.execute(
        """INSERT INTO shipment_milestones (shipment_id, milestone, event_id)
           SELECT $1, m.milestone, m.event_id
             FROM unnest($2::text[], $3::text[]) AS m (milestone, event_id)""",
        shipment_id,
        [milestone for milestone, _ in reached],
        [event_id for _, event_id in reached],
    )
