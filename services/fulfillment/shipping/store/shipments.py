"""Orders as shipping knows them, shipments, their labels and milestones."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from services.fulfillment.shipping.carrier import Label
from services.fulfillment.shipping.domain.shipment import ShipmentStatus, Tracking
from services.fulfillment.shipping.domain.shopping import Choice
from shared.runtime.writes import Writes
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


def qualified(columns: str, alias: str) -> str:
    """The columns qualified, for joins with tables that share some of their names."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


async def lock_order(conn: asyncpg.Connection, order_id: str) -> OrderRow:
    """The order's row, locked (created empty if this is the first message about it)."""
    return (await lock_or_create_orders(conn, [order_id]))[order_id]


async def lock_orders(conn: asyncpg.Connection, order_ids: Iterable[str]) -> dict[str, OrderRow]:
    """Those of the orders that have a row, locked in order_id order (so that two
    transactions locking several cannot deadlock on them)."""
    rows = await conn.fetch(
        f"""SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = ANY($1::text[])
            ORDER BY order_id FOR UPDATE""",
        sorted(set(order_ids)),
    )
    return {r["order_id"]: _order(r) for r in rows}


async def lock_or_create_orders(
    conn: asyncpg.Connection, order_ids: Iterable[str]
) -> dict[str, OrderRow]:
    """The orders' rows, locked; created empty for those this is the first news of:
    order.placed and packing.packed arrive on different topics and meet here."""
    wanted = set(order_ids)
    orders = await lock_orders(conn, wanted)
    if missing := wanted - orders.keys():
        rows = await conn.fetch(
            f"""INSERT INTO orders (order_id) SELECT unnest($1::text[])
                ON CONFLICT (order_id) DO NOTHING RETURNING {ORDER_COLUMNS}""",
            sorted(missing),
        )
        orders.update((r["order_id"], _order(r)) for r in rows)
    if missing := wanted - orders.keys():  # concurrent transactions inserted them first
        orders.update(await lock_orders(conn, missing))
    assert orders.keys() == wanted
    return orders


PLACED_VALUES = """unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
                   AS p (order_id, placed_at, service_level, ship_to, customer)"""


def _placed_columns(placed: Sequence[OrderPlaced]) -> tuple[list[object], ...]:
    """The values of each order, by column, for ``PLACED_VALUES``; in order_id order."""
    ordered = sorted(placed, key=lambda p: p.order_id)
    return (
        [p.order_id for p in ordered],
        [p.occurred_at for p in ordered],
        [p.service_level for p in ordered],
        [p.shipping_address.model_dump_json() for p in ordered],
        [p.customer.model_dump_json() for p in ordered],
    )


async def insert_placed(conn: asyncpg.Connection, placed: Sequence[OrderPlaced]) -> set[str]:
    """The usual case in one statement: order.placed is the first news of the order.
    The ids of the orders inserted; the others have a row already (placed before, or
    packed or cancelled first). One order.placed per order, please."""
    if not placed:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO orders (order_id, placed_at, service_level, ship_to, customer)
            SELECT p.order_id, p.placed_at, p.service_level, p.ship_to::jsonb, p.customer::jsonb
              FROM {PLACED_VALUES}
            ON CONFLICT (order_id) DO NOTHING RETURNING order_id""",
        *_placed_columns(placed),
    )
    return {r["order_id"] for r in rows}


async def record_placed(
    conn: asyncpg.Connection, placed: Sequence[OrderPlaced]
) -> dict[str, OrderRow]:
    """What a label needs, on the locked rows of orders not placed before."""
    if not placed:
        return {}
    rows = await conn.fetch(
        f"""UPDATE orders o
               SET placed_at = p.placed_at, service_level = p.service_level,
                   ship_to = p.ship_to::jsonb, customer = p.customer::jsonb, updated_at = now()
              FROM {PLACED_VALUES}
             WHERE o.order_id = p.order_id AND o.placed_at IS NULL
         RETURNING {qualified(ORDER_COLUMNS, "o")}""",
        *_placed_columns(placed),
    )
    assert len(rows) == len(placed), "record_placed needs the locked rows of unplaced orders"
    return {r["order_id"]: _order(r) for r in rows}


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
    backorder_round: str | None  # None: the order's reservation round
    packages: list[Package]
    status: ShipmentStatus
    carrier: str | None
    tracking_number: str | None
    estimated_delivery: date | None
    last_scan_at: datetime | None

    def tracking(self) -> Tracking:
        return Tracking(self.status, self.estimated_delivery, self.last_scan_at)


SHIPMENT_COLUMNS = """shipment_id, packing_id, order_id, warehouse_id, backorder_round,
                      packages, status, carrier, tracking_number, estimated_delivery,
                      last_scan_at"""


def shipment_columns(alias: str) -> str:
    return qualified(SHIPMENT_COLUMNS, alias)


def shipment_from_record(r: asyncpg.Record) -> ShipmentRow:
    return ShipmentRow(
        shipment_id=r["shipment_id"],
        packing_id=r["packing_id"],
        order_id=r["order_id"],
        warehouse_id=r["warehouse_id"],
        backorder_round=r["backorder_round"],
        packages=[Package.model_validate(p) for p in json.loads(r["packages"])],
        status=ShipmentStatus(r["status"]),
        carrier=r["carrier"],
        tracking_number=r["tracking_number"],
        estimated_delivery=r["estimated_delivery"],
        last_scan_at=r["last_scan_at"],
    )


async def insert_shipments(
    conn: asyncpg.Connection, packings: Sequence[tuple[str, Packed, str]]
) -> dict[str, ShipmentRow]:
    """New shipments awaiting their labels, from (shipment id, packing, event id), one per
    packing: those inserted (locked: ours until we commit), by id. A packing that has a
    shipment already is left out; another packing of a round that has one (same order,
    warehouse and backorder round) is refused by the table."""
    if not packings:
        return {}
    ordered = sorted(packings, key=lambda p: p[0])
    rows = await conn.fetch(
        f"""INSERT INTO shipments (shipment_id, packing_id, order_id, warehouse_id,
                                   backorder_round, packages, packed_event_id, status)
            SELECT n.shipment_id, n.packing_id, n.order_id, n.warehouse_id, n.backorder_round,
                   n.packages::jsonb, n.packed_event_id, 'awaiting_order'
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::text[], $7::text[])
                   AS n (shipment_id, packing_id, order_id, warehouse_id, backorder_round,
                         packages, packed_event_id)
            ON CONFLICT (packing_id) DO NOTHING
         RETURNING {SHIPMENT_COLUMNS}""",
        [shipment_id for shipment_id, _, _ in ordered],
        [packed.packing_id for _, packed, _ in ordered],
        [packed.order_id for _, packed, _ in ordered],
        [packed.warehouse_id for _, packed, _ in ordered],
        [packed.backorder_round for _, packed, _ in ordered],
        [_packages_json(packed) for _, packed, _ in ordered],
        [event_id for _, _, event_id in ordered],
    )
    return {r["shipment_id"]: shipment_from_record(r) for r in rows}


def _packages_json(packed: Packed) -> str:
    return json.dumps([p.model_dump(mode="json") for p in packed.packages])


async def lock_shipments(
    conn: asyncpg.Connection, shipment_ids: Iterable[str]
) -> dict[str, ShipmentRow]:
    rows = await conn.fetch(
        f"""SELECT {SHIPMENT_COLUMNS} FROM shipments WHERE shipment_id = ANY($1::text[])
            ORDER BY shipment_id FOR UPDATE""",
        sorted(set(shipment_ids)),
    )
    return {r["shipment_id"]: shipment_from_record(r) for r in rows}


async def lock_awaiting(conn: asyncpg.Connection, order_ids: Iterable[str]) -> list[ShipmentRow]:
    """The orders' shipments still waiting for order.placed (or a cancellation), in
    shipment_id order."""
    rows = await conn.fetch(
        f"""SELECT {SHIPMENT_COLUMNS} FROM shipments
             WHERE order_id = ANY($1::text[]) AND status = 'awaiting_order'
             ORDER BY shipment_id FOR UPDATE""",
        sorted(set(order_ids)),
    )
    return [shipment_from_record(r) for r in rows]


async def count_with_carrier(conn: asyncpg.Connection, order_id: str) -> int:
    value = await conn.fetchval(
        """SELECT count(*) FROM shipments
            WHERE order_id = $1 AND status NOT IN ('awaiting_order', 'cancelled')""",
        order_id,
    )
    return int(value)


# --- writes queued until the run ends (shared/runtime/writes.py) ---

SET_STATUS = "UPDATE shipments SET status = $2, updated_at = now() WHERE shipment_id = $1"


def set_status(writes: Writes, shipment_id: str, status: ShipmentStatus) -> None:
    writes.add(SET_STATUS, shipment_id, status)


SAVE_TRACKING = """UPDATE shipments
                      SET status = $2, estimated_delivery = $3, last_scan_at = $4,
                          updated_at = now()
                    WHERE shipment_id = $1"""


def save_tracking(writes: Writes, shipment_id: str, tracking: Tracking) -> None:
    """The shipment as its latest scans left it."""
    writes.add(
        SAVE_TRACKING,
        shipment_id,
        tracking.status,
        tracking.estimated_delivery,
        tracking.last_scan_at,
    )


# The label, every tracking number it gives (the master has no package id), and the
# shipment dispatched with it: one statement.
RECORD_LABEL = """WITH label AS (
                      INSERT INTO labels (shipment_id, idempotency_key, carrier, service,
                                          tracking_number, label_url, cost_minor, currency,
                                          estimated_delivery)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                  ), numbers AS (
                      INSERT INTO tracking_numbers (tracking_number, shipment_id, carrier,
                                                    package_id)
                      SELECT n.tracking_number, $1, $3, n.package_id
                        FROM unnest($10::text[], $11::text[]) AS n (tracking_number, package_id)
                  )
                  UPDATE shipments
                     SET status = 'dispatched', carrier = $3, service = $4, tracking_number = $5,
                         estimated_delivery = $9, promised_by = $12, meets_promise = $13,
                         updated_at = now()
                   WHERE shipment_id = $1"""


def record_label(
    writes: Writes, shipment: ShipmentRow, key: str, label: Label, choice: Choice
) -> None:
    numbers = [(label.tracking_number, None), *((n, p) for p, n in label.package_tracking.items())]
    writes.add(
        RECORD_LABEL,
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


# No ON CONFLICT: a second label_purchased, dispatched or delivered for a shipment fails
# the transaction, and with it the events.
ADD_MILESTONE = """INSERT INTO shipment_milestones (shipment_id, milestone, event_id)
                   VALUES ($1, $2, $3)"""


def add_milestone(writes: Writes, shipment_id: str, milestone: str, event_id: str) -> None:
    """The milestone reached, with the id of the event emitted for it."""
    writes.add(ADD_MILESTONE, shipment_id, milestone, event_id)
