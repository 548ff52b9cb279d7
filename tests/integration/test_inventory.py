"""The inventory service on a real broker and PostgreSQL: reserve, fail, release, backorder,
receive, commit — and no oversell with two processes racing for the last units.

Seed data: the first test lets the service seed its empty catalog from the shipped
``seed/catalog.json`` at start-up. The others write their own small seed file and load
it before the service starts (``seed_database``: migrate, then ``load_seed``; the
concurrency test does the same through ``python -m services.inventory.seed``), so the
service finds a non-empty catalog and leaves it alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.inventory.seed import load_seed, seed_database
from shared.schemas import Envelope, to_headers
from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import ItemCount, ShipmentDispatched, ShippedPackage
from shared.schemas.events.inventory import ReceiveStock
from shared.schemas.events.order import OrderCancelled, OrderPickingStarted, OrderPlaced
from shared.schemas.events.returns import RestockedLine, ReturnRestocked
from tests.factories import placed_event
from tests.integration.harness import ROOT, ServiceProcess, Stack, data, eventually, header

S = "inventory_service"


# --- messages ---


def placed(
    order_id: str, lines: list[tuple[str, int]], country: str = "GB", region: str | None = None
) -> OrderPlaced:
    return placed_event(order_id, lines, country=country, region=region)


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        order_version=2,
        occurred_at=datetime.now(UTC),
        reasons=[Reason(code="customer_request", message="changed my mind")],
        cancelled_by="customer",
    )


def dispatched(
    order_id: str, shipment_id: str, warehouse_id: str, items: list[tuple[str, str, int]]
) -> ShipmentDispatched:
    return ShipmentDispatched(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        shipment_id=shipment_id,
        carrier="dhl",
        tracking_number=f"TRK-{shipment_id}",
        warehouse_id=warehouse_id,
        service="standard",
        packages=[
            ShippedPackage(
                package_id=f"PKG-{shipment_id}",
                box_code="M",
                length_mm=300,
                width_mm=200,
                height_mm=100,
                weight_grams=900,
                tracking_number=f"TRK-{shipment_id}-1",
                items=[ItemCount(line_id=line, sku=sku, quantity=qty) for line, sku, qty in items],
            )
        ],
    )


# --- seed files and reading back ---


def seed_file(tmp_path: Path, **seed: Any) -> Path:
    path = tmp_path / f"seed-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(seed))
    return path


TWO_WAREHOUSES = [
    {"warehouse_id": "WH-A", "name": "A (London)", "region": "GB"},
    {"warehouse_id": "WH-B", "name": "B (Berlin)", "region": "DE"},
]


async def events(stack: Stack, topic: str, type_: str | None = None) -> list[dict[str, Any]]:
    return [
        data(r)
        for r in await stack.read_topic(topic)
        if type_ is None or header(r, "ce_type") == type_
    ]


async def wait_for_events(
    stack: Stack, topic: str, type_: str, count: int, timeout_s: float = 60.0
) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await events(stack, topic, type_)
        return found if len(found) >= count else None

    return await eventually(enough, timeout_s=timeout_s, what=f"{count} x {type_} in {topic}")


async def stock_rows(stack: Stack, sku: str) -> dict[str, dict[str, int]]:
    rows = await stack.query(
        f"SELECT warehouse_id, on_hand, reserved, safety_stock FROM {S}.stock WHERE sku = $1",
        sku,
    )
    return {
        r["warehouse_id"]: {k: r[k] for k in ("on_hand", "reserved", "safety_stock")} for r in rows
    }


async def consumed(stack: Stack, service: ServiceProcess, topic: str, count: int) -> None:
    """Until ``count`` records of ``topic`` were consumed and what they emitted is out."""

    async def done() -> bool:
        return await service.metric("conveyor_events_consumed_total", topic=topic) >= count

    async def outbox_drained() -> bool:
        return not await stack.query(f"SELECT 1 FROM {S}.outbox WHERE sent_at IS NULL")

    await eventually(done, what=f"{count} records of {topic} consumed")
    await eventually(outbox_drained, what="the outbox published")


def allocations(event: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [
        (a["line_id"], a["sku"], a["warehouse_id"], a["quantity"]) for a in event["allocations"]
    ]


# --- the tests ---


async def test_reserve_from_the_default_seed_emits_stock_levels(stack: Stack) -> None:
    inventory = await stack.start("inventory")  # empty catalog: seeds seed/catalog.json
    seeded = await wait_for_events(stack, "stock.events", "stock.level_changed.v1", 15)
    assert {(e["sku"], e["warehouse_id"]) for e in seeded} >= {
        ("MUG-BLUE", "WH-LON"),
        ("TEE-M", "WH-LON"),
        ("TEE-M-BLACK", "WH-LON"),
    }
    assert {e["version"] for e in seeded} == {1}

    order = placed("ord-default-1", [("MUG-BLUE", 2), ("TEE-M", 1)], country="GB")
    [first] = await stack.publish_messages("order.events", [order])
    await stack.publish_messages("order.events", [order], id=first)  # redelivered
    await stack.publish_messages("order.events", [order])  # re-emitted: new ce_id

    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    assert reserved["order_id"] == "ord-default-1"
    assert allocations(reserved) == [("1", "MUG-BLUE", "WH-LON", 2), ("2", "TEE-M", "WH-LON", 1)]
    assert reserved["backordered"] == []

    levels = await wait_for_events(stack, "stock.events", "stock.level_changed.v1", 17)
    changed = {(e["sku"], e["warehouse_id"]): e for e in levels if e["version"] == 2}
    mug, tee = changed[("MUG-BLUE", "WH-LON")], changed[("TEE-M", "WH-LON")]
    assert (mug["on_hand"], mug["reserved"], mug["safety_stock"], mug["available"]) == (
        40,
        2,
        2,
        36,
    )
    assert (tee["on_hand"], tee["reserved"], tee["available"]) == (10, 1, 9)
    assert (await stock_rows(stack, "MUG-BLUE"))["WH-LON"]["reserved"] == 2

    await consumed(stack, inventory, "order.events", 3)
    assert await inventory.metric("conveyor_events_consumed_total", outcome="duplicate") == 1
    assert len(await events(stack, "inventory.events")) == 1  # the re-emitted one: a no-op
    assert len(await events(stack, "stock.events", "stock.level_changed.v1")) == 17


async def test_out_of_stock_fails_and_holds_nothing(stack: Stack, tmp_path: Path) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "LAMP"}, {"sku": "MUG"}],
        stock=[
            {"sku": "LAMP", "warehouse_id": "WH-A", "on_hand": 2},
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 10},
            {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 10},
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    await stack.publish_messages(
        "order.events",
        [
            placed("ord-short", [("MUG", 3), ("LAMP", 5)]),
            placed("ord-unknown", [("MUG", 1), ("GHOST", 1)]),
        ],
    )
    failures = await wait_for_events(
        stack, "inventory.events", "inventory.reservation_failed.v1", 2
    )
    by_order = {f["order_id"]: f["shortages"] for f in failures}
    assert by_order["ord-short"] == [
        {
            "sku": "LAMP",
            "requested": 5,
            "available": 2,
            "code": "not_backorderable",
            "message": by_order["ord-short"][0]["message"],
        }
    ]
    assert [(s["sku"], s["code"]) for s in by_order["ord-unknown"]] == [("GHOST", "unknown_sku")]

    # the order saga cancels a failed order: nothing was held, so nothing is released
    await stack.publish_messages("order.events", [cancelled("ord-short")])
    await consumed(stack, inventory, "order.events", 3)
    assert [header(r, "ce_type") for r in await stack.read_topic("inventory.events")] == [
        "inventory.reservation_failed.v1",
        "inventory.reservation_failed.v1",
    ]
    assert await stack.query(f"SELECT * FROM {S}.allocations") == []
    totals = await stack.query(f"SELECT sum(reserved) AS n FROM {S}.stock")
    assert totals[0]["n"] == 0
    levels = await events(stack, "stock.events", "stock.level_changed.v1")
    assert len(levels) == 3 and {e["version"] for e in levels} == {1}  # only the seed's


async def test_cancellation_releases_a_split_reservation_once(stack: Stack, tmp_path: Path) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "MUG"}, {"sku": "TEE"}],
        stock=[
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 3},
            {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 4},
            {"sku": "TEE", "warehouse_id": "WH-B", "on_hand": 4, "safety_stock": 1},
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    await stack.publish_messages("order.events", [placed("ord-c", [("MUG", 5), ("TEE", 2)])])
    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    # no single warehouse has it all: 3 mugs from the nearest (A, GB), the rest from B
    assert allocations(reserved) == [
        ("1", "MUG", "WH-A", 3),
        ("1", "MUG", "WH-B", 2),
        ("2", "TEE", "WH-B", 2),
    ]
    assert (await stock_rows(stack, "TEE"))["WH-B"]["reserved"] == 2

    cancel = cancelled("ord-c")
    [cancel_id] = await stack.publish_messages("order.events", [cancel])
    await stack.publish_messages("order.events", [cancel], id=cancel_id)  # redelivered
    await stack.publish_messages("order.events", [cancel])  # cancelled again: new ce_id
    await consumed(stack, inventory, "order.events", 4)

    released = await events(stack, "inventory.events", "inventory.released.v1")
    assert len(released) == 1
    assert released[0]["reservation_id"] == reserved["reservation_id"]
    assert sorted(allocations(released[0])) == sorted(allocations(reserved))
    assert released[0]["reason"] == "order_cancelled: customer_request"
    for sku in ("MUG", "TEE"):
        assert {w: r["reserved"] for w, r in (await stock_rows(stack, sku)).items()} == {
            w: 0 for w in await stock_rows(stack, sku)
        }
    status = await stack.query(f"SELECT status FROM {S}.reservations WHERE order_id = 'ord-c'")
    assert status[0]["status"] == "released"

    levels = await wait_for_events(stack, "stock.events", "stock.level_changed.v1", 3 + 3 + 3)
    last = {}
    for e in levels:  # one partition per SKU: in order
        key = (e["sku"], e["warehouse_id"])
        assert e["version"] == last.get(key, {"version": 0})["version"] + 1
        last[key] = e
    assert [(k, e["reserved"], e["available"]) for k, e in sorted(last.items())] == [
        (("MUG", "WH-A"), 0, 3),
        (("MUG", "WH-B"), 0, 4),
        (("TEE", "WH-B"), 0, 3),
    ]


async def test_backorder_gets_a_date_then_a_receipt_allocates_it(
    stack: Stack, tmp_path: Path
) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "HOODIE", "backorderable": True}, {"sku": "MUG"}],
        stock=[
            {"sku": "HOODIE", "warehouse_id": "WH-A", "on_hand": 1},
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 5},
        ],
        incoming=[
            {
                "reference": "PO-9",
                "sku": "HOODIE",
                "warehouse_id": "WH-A",
                "quantity": 10,
                "expected_in_days": 7,
            }
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    today = datetime.now(UTC).date()
    await stack.publish_messages("order.events", [placed("ord-bo", [("MUG", 1), ("HOODIE", 3)])])
    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    assert allocations(reserved) == [("1", "MUG", "WH-A", 1), ("2", "HOODIE", "WH-A", 1)]
    assert reserved["backordered"] == [
        {
            "line_id": "2",
            "sku": "HOODIE",
            "quantity": 2,
            "expected_restock_date": (today + timedelta(days=7)).isoformat(),
        }
    ]
    assert (await stock_rows(stack, "HOODIE"))["WH-A"] == {
        "on_hand": 1,
        "reserved": 1,
        "safety_stock": 0,
    }

    # the goods arrive: booked with the CLI (publishes inventory.receive_stock.v1)
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.inventory.receive",
        "HOODIE",
        "WH-A",
        "5",
        "--reference",
        "PO-9",
        "--receipt-id",
        "R-1",
        "--received-by",
        "test",
        cwd=ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await cli.communicate()
    assert cli.returncode == 0, output.decode()
    [received] = await wait_for_events(stack, "stock.events", "inventory.stock_received.v1", 1)
    assert (received["sku"], received["warehouse_id"], received["quantity"]) == (
        "HOODIE",
        "WH-A",
        5,
    )
    assert (received["receipt_id"], received["source"]) == ("R-1", "purchase_order")
    [allocated] = await wait_for_events(
        stack, "inventory.events", "inventory.backorder_allocated.v1", 1
    )
    assert allocated["order_id"] == "ord-bo"
    assert allocated["reservation_id"] == reserved["reservation_id"]
    assert allocations(allocated) == [("2", "HOODIE", "WH-A", 2)]
    assert allocated["still_backordered"] == []
    assert (await stock_rows(stack, "HOODIE"))["WH-A"] == {
        "on_hand": 6,
        "reserved": 3,
        "safety_stock": 0,
    }
    incoming = await stack.query(f"SELECT received FROM {S}.incoming_stock")
    assert [r["received"] for r in incoming] == [5]

    # the same receipt again (a retry): booked once
    retry = ReceiveStock(
        sku="HOODIE", warehouse_id="WH-A", quantity=5, receipt_id="R-1", received_by="test"
    )
    await stack.publish_messages("inventory.commands", [retry])
    await consumed(stack, inventory, "inventory.commands", 2)
    assert len(await events(stack, "stock.events", "inventory.stock_received.v1")) == 1
    assert (await stock_rows(stack, "HOODIE"))["WH-A"]["on_hand"] == 6

    hoodie = [
        e
        for e in await events(stack, "stock.events", "stock.level_changed.v1")
        if e["sku"] == "HOODIE"
    ]
    assert [(e["version"], e["on_hand"], e["reserved"], e["available"]) for e in hoodie] == [
        (1, 1, 0, 1),  # seed
        (2, 1, 1, 0),  # reserved 1, 2 backordered
        (3, 6, 3, 3),  # 5 received, 2 of them to the backorder
    ]
    assert hoodie[0]["next_restock_date"] == (today + timedelta(days=7)).isoformat()
    assert hoodie[-1]["next_restock_date"] == (today + timedelta(days=7)).isoformat()  # 5 of 10


async def test_shipment_dispatched_commits_per_warehouse(stack: Stack, tmp_path: Path) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "MUG"}],
        stock=[
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 2},
            {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 5},
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    await stack.publish_messages("order.events", [placed("ord-s", [("MUG", 4)], country="DE")])
    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    assert allocations(reserved) == [("1", "MUG", "WH-B", 4)]  # Berlin ships to Germany

    first = dispatched("ord-s", "SHP-1", "WH-B", [("1", "MUG", 3)])
    await stack.publish_messages("shipping.events", [first])
    [committed] = await wait_for_events(stack, "inventory.events", "inventory.committed.v1", 1)
    assert committed["shipment_id"] == "SHP-1"
    assert allocations(committed) == [("1", "MUG", "WH-B", 3)]
    assert (await stock_rows(stack, "MUG"))["WH-B"] == {
        "on_hand": 2,
        "reserved": 1,
        "safety_stock": 0,
    }
    await stack.publish_messages("shipping.events", [first])  # the same dispatch again
    await stack.publish_messages(
        "shipping.events", [dispatched("ord-s", "SHP-2", "WH-B", [("1", "MUG", 1)])]
    )
    await wait_for_events(stack, "inventory.events", "inventory.committed.v1", 2)
    await consumed(stack, inventory, "shipping.events", 3)
    assert len(await events(stack, "inventory.events", "inventory.committed.v1")) == 2
    assert await stock_rows(stack, "MUG") == {
        "WH-A": {"on_hand": 2, "reserved": 0, "safety_stock": 0},
        "WH-B": {"on_hand": 1, "reserved": 0, "safety_stock": 0},
    }
    status = await stack.query(f"SELECT status FROM {S}.reservations")
    assert [r["status"] for r in status] == ["committed"]

    # a cancellation after shipping has nothing left to release
    await stack.publish_messages("order.events", [cancelled("ord-s")])
    await consumed(stack, inventory, "order.events", 2)
    assert await events(stack, "inventory.events", "inventory.released.v1") == []
    b = [
        (e["version"], e["on_hand"], e["reserved"], e["available"])
        for e in await events(stack, "stock.events", "stock.level_changed.v1")
        if e["warehouse_id"] == "WH-B"
    ]
    assert b == [(1, 5, 0, 5), (2, 5, 4, 1), (3, 2, 1, 1), (4, 1, 0, 1)]

    # a returned mug is inspected as resellable and restocked in Berlin
    restocked = ReturnRestocked(
        order_id="ord-s",
        return_id="RET-1",
        occurred_at=datetime.now(UTC),
        warehouse_id="WH-B",
        lines=[RestockedLine(line_id="1", sku="MUG", quantity=1)],
    )
    await stack.publish_messages("returns.events", [restocked, restocked])  # and once more
    await consumed(stack, inventory, "returns.events", 2)
    [back] = await events(stack, "stock.events", "inventory.stock_received.v1")
    assert (back["source"], back["return_id"], back["order_id"]) == ("return", "RET-1", "ord-s")
    assert (await stock_rows(stack, "MUG"))["WH-B"]["on_hand"] == 2


async def test_seed_loader_is_idempotent_and_keeps_reservations(
    stack: Stack, tmp_path: Path
) -> None:
    def catalog(on_hand: int) -> Path:
        return seed_file(
            tmp_path,
            warehouses=TWO_WAREHOUSES,
            region_order={"*": ["DE", "GB"]},
            skus=[{"sku": "MUG"}],
            stock=[
                {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": on_hand, "safety_stock": 1},
                {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 3},
            ],
        )

    first = await seed_database(stack.database_url, catalog(on_hand=10))  # migrates first
    assert first.levels_changed == 2
    conn = await stack.db()  # a plain connection: load_seed finds the schema itself
    try:
        assert (await load_seed(conn, catalog(on_hand=10))).levels_changed == 0  # no change
        await conn.execute(f"UPDATE {S}.stock SET reserved = 4 WHERE warehouse_id = 'WH-A'")
        assert (await load_seed(conn, catalog(on_hand=12))).levels_changed == 1
        with pytest.raises(asyncpg.CheckViolationError):  # 4 reserved + 1 safety > 3
            await load_seed(conn, catalog(on_hand=3))
    finally:
        await conn.close()
    assert await stock_rows(stack, "MUG") == {
        "WH-A": {"on_hand": 12, "reserved": 4, "safety_stock": 1},  # reservations kept
        "WH-B": {"on_hand": 3, "reserved": 0, "safety_stock": 0},
    }
    outbox = await stack.query(f"SELECT payload FROM {S}.outbox ORDER BY id")
    levels = [json.loads(r["payload"]) for r in outbox]
    assert [(e["warehouse_id"], e["version"], e["available"]) for e in levels] == [
        ("WH-A", 1, 9),
        ("WH-B", 1, 3),
        ("WH-A", 2, 7),
    ]
    order = await stack.query(f"SELECT ship_to, position, region FROM {S}.region_order")
    assert [tuple(r) for r in order] == [("*", 0, "DE"), ("*", 1, "GB")]


# --- concurrency ---

ORDERS = 200
UNITS = 50  # 30 in A; 25 - 5 safety stock in B


async def test_two_processes_never_oversell(stack: Stack, tmp_path: Path) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "WIDGET", "backorderable": False}],
        stock=[
            {"sku": "WIDGET", "warehouse_id": "WH-A", "on_hand": 30},
            {"sku": "WIDGET", "warehouse_id": "WH-B", "on_hand": 25, "safety_stock": 5},
        ],
    )
    loader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.inventory.seed",
        str(seed),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": stack.database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await loader.communicate()
    assert loader.returncode == 0, output.decode()

    a = stack.service("inventory", instance_id="a").start()
    b = stack.service("inventory", instance_id="b").start()
    await both_own_partitions(stack, a, b)

    orders = [placed(f"race-{n}-{uuid.uuid4().hex[:8]}", [("WIDGET", 1)]) for n in range(ORDERS)]
    await stack.publish_messages("order.events", orders)

    outcomes = await eventually(
        lambda: _outcomes(stack), timeout_s=120, what=f"{ORDERS} reservation outcomes"
    )
    types = Counter(header(r, "ce_type") for r in outcomes)
    assert types == {
        "inventory.reserved.v1": UNITS,
        "inventory.reservation_failed.v1": ORDERS - UNITS,
    }
    reserved = [data(r) for r in outcomes if header(r, "ce_type") == "inventory.reserved.v1"]
    assert sum(x["quantity"] for r in reserved for x in r["allocations"]) == UNITS
    assert len({data(r)["order_id"] for r in outcomes}) == ORDERS
    failed = [data(r) for r in outcomes if header(r, "ce_type") != "inventory.reserved.v1"]
    assert {(s["code"], s["available"]) for f in failed for s in f["shortages"]} == {
        ("out_of_stock", 0)
    }

    # both processes did real work, and every order was handled exactly once
    handled = [
        await p.metric("conveyor_events_consumed_total", topic="order.events", outcome="handled")
        for p in (a, b)
    ]
    assert all(n > 0 for n in handled), handled
    assert sum(handled) == ORDERS

    rows = await stock_rows(stack, "WIDGET")
    assert sum(r["reserved"] for r in rows.values()) == UNITS
    assert rows == {
        "WH-A": {"on_hand": 30, "reserved": 30, "safety_stock": 0},
        "WH-B": {"on_hand": 25, "reserved": 20, "safety_stock": 5},
    }
    held = await stack.query(f"SELECT sum(quantity) AS n FROM {S}.allocations")
    assert held[0]["n"] == UNITS
    statuses = await stack.query(f"SELECT status, count(*) AS n FROM {S}.reservations GROUP BY 1")
    assert {r["status"]: r["n"] for r in statuses} == {"held": UNITS, "failed": ORDERS - UNITS}

    # every level anyone could observe: never below zero, versions in order per warehouse
    levels = await wait_for_events(stack, "stock.events", "stock.level_changed.v1", 2 + UNITS)
    version: dict[str, int] = defaultdict(int)
    for e in levels:
        assert e["on_hand"] - e["reserved"] - e["safety_stock"] >= 0, e
        assert e["available"] >= 0
        assert e["version"] == version[e["warehouse_id"]] + 1, e
        version[e["warehouse_id"]] = e["version"]
    assert len(levels) == 2 + UNITS

    # and the database itself refuses to oversell, whatever the code does
    conn = await stack.db()
    try:
        for sql in (
            f"UPDATE {S}.stock SET reserved = reserved + 1 WHERE warehouse_id = 'WH-A'",
            f"UPDATE {S}.stock SET reserved = reserved + 1 WHERE warehouse_id = 'WH-B'",
            f"UPDATE {S}.stock SET reserved = -1 WHERE warehouse_id = 'WH-A'",
            f"UPDATE {S}.stock SET on_hand = on_hand - 1 WHERE warehouse_id = 'WH-A'",
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(sql)
    finally:
        await conn.close()
    for p in (a, b):
        assert await p.metric("conveyor_dead_letters_total") == 0


async def _outcomes(stack: Stack) -> list[Any] | None:
    records = await stack.read_topic("inventory.events")
    return records if len(records) >= ORDERS else None


async def both_own_partitions(stack: Stack, a: ServiceProcess, b: ServiceProcess) -> None:
    """Until both processes consume part of order.events: rounds of events inventory
    ignores (picking started), spread over the partitions, until each process saw some.

    Only one of them reports ready: readiness includes holding the outbox relay's lock,
    and one relay per service publishes at a time. The other one must be up, consuming.
    """

    async def up() -> bool:
        for p in (a, b):
            assert p.proc is not None and p.proc.poll() is None, p.log()
        async with httpx.AsyncClient() as http:
            try:
                live = [await http.get(f"{p.url}/health/live") for p in (a, b)]
                ready = [await http.get(f"{p.url}/health/ready") for p in (a, b)]
            except httpx.TransportError:
                return False
        return all(r.status_code == 200 for r in live) and any(r.status_code == 200 for r in ready)

    await eventually(up, timeout_s=60, what="both processes up, one of them ready")

    async def count(p: ServiceProcess) -> float:
        return await p.metric("conveyor_events_consumed_total", topic="order.events")

    for _ in range(60):
        before = (await count(a), await count(b))
        warm = [
            OrderPickingStarted(
                order_id=f"warm-{uuid.uuid4().hex}", order_version=3, occurred_at=datetime.now(UTC)
            )
            for _ in range(24)
        ]
        await stack.publish_messages("order.events", warm)
        target = sum(before) + len(warm)

        async def round_consumed(target: float = target) -> bool:
            return await count(a) + await count(b) >= target

        await eventually(round_consumed, what="a warm-up round")
        if await count(a) > before[0] and await count(b) > before[1]:
            return
    raise AssertionError("the two inventory processes never shared order.events")


# --- runs: placements and shipments are applied set-based, as if one by one ---

RUN_SEED: dict[str, Any] = {
    "warehouses": TWO_WAREHOUSES,
    "skus": [{"sku": "MUG"}, {"sku": "LAMP"}, {"sku": "HOODIE", "backorderable": True}],
    "stock": [
        {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 3},
        {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 4},
        {"sku": "LAMP", "warehouse_id": "WH-A", "on_hand": 2},
        {"sku": "HOODIE", "warehouse_id": "WH-A", "on_hand": 1},
    ],
    "incoming": [
        {"reference": "PO-1", "sku": "HOODIE", "warehouse_id": "WH-A", "quantity": 3,
         "expected_in_days": 7},
        {"reference": "PO-2", "sku": "HOODIE", "warehouse_id": "WH-B", "quantity": 10,
         "expected_in_days": 14},
    ],
}  # fmt: skip

# each competes for what the ones before it left; a cancellation (a record handler)
# splits the run in two
RUN_OF_PLACEMENTS = [
    placed("run-1", [("MUG", 2)]),  # London has it all
    placed("run-2", [("MUG", 2)]),  # one left in London: Berlin has it all
    cancelled("run-9"),  # before it was placed: a tombstone
    placed("run-3", [("MUG", 3)]),  # the last one in London, two from Berlin
    placed("run-1", [("MUG", 2)]),  # placed again: changes nothing
    placed("run-4", [("MUG", 1), ("LAMP", 1)]),  # no mug left: fails, no lamp held
    placed("run-5", [("HOODIE", 3)]),  # one held, two wait for next week's three
    placed("run-6", [("LAMP", 1), ("HOODIE", 2)]),  # its two wait behind those: in 14 days
    placed("run-9", [("MUG", 1)]),  # cancelled before: reserves nothing
    placed("run-7", [("GHOST", 1)]),  # unknown SKU
]

RUN_OF_SHIPMENTS = [
    dispatched("run-1", "SHP-1", "WH-A", [("1", "MUG", 1)]),
    dispatched("run-1", "SHP-2", "WH-A", [("1", "MUG", 1)]),  # run-1 fully committed
    dispatched("run-1", "SHP-1", "WH-A", [("1", "MUG", 1)]),  # the same shipment again
    dispatched("run-1", "SHP-3", "WH-A", [("1", "MUG", 1)]),  # nothing held any more
    dispatched("run-3", "SHP-4", "WH-B", [("1", "MUG", 2)]),
    dispatched("run-3", "SHP-5", "WH-A", [("1", "MUG", 1)]),  # run-3 fully committed
    dispatched("run-5", "SHP-6", "WH-A", [("1", "HOODIE", 1)]),  # two still on backorder
    dispatched("run-2", "SHP-7", "WH-A", [("1", "MUG", 2)]),  # held in Berlin, not London
]


async def test_runs_of_placements_and_shipments_equal_one_by_one(
    stack: Stack, tmp_path: Path
) -> None:
    """The same records to two inventories: one takes each topic's records in one poll
    (runs of several placements, then of several shipments), the other one record per
    poll. Same decisions, same events in the same order, same tables."""
    one_by_one_db = stack.sibling_database("one_by_one")
    seed = seed_file(tmp_path, **RUN_SEED)
    for database_url in (stack.database_url, one_by_one_db):
        await seed_database(database_url, seed)

    # published before the services start: the first poll hands over all of them
    await publish_in_one_partition(stack, "order.events", RUN_OF_PLACEMENTS)
    batched, one_by_one = await stack.start_with_one_by_one_twin("inventory", one_by_one_db)
    await both_consumed(batched, one_by_one, "order.events", len(RUN_OF_PLACEMENTS))
    await applied_in_one_run(batched, "order.events")
    for process in (batched, one_by_one):
        process.stop()

    await publish_in_one_partition(stack, "shipping.events", RUN_OF_SHIPMENTS)
    batched, one_by_one = await stack.start_with_one_by_one_twin("inventory", one_by_one_db)
    await both_consumed(batched, one_by_one, "shipping.events", len(RUN_OF_SHIPMENTS))
    await applied_in_one_run(batched, "shipping.events")

    state = await inventory_state(stack.database_url)
    assert state == await inventory_state(one_by_one_db)

    today = datetime.now(UTC).date()
    outcomes = [
        (e["event_type"], e["payload"]["order_id"])
        for e in state["outbox"]
        if e["topic"] == "inventory.events"
    ]
    assert outcomes == [
        ("inventory.reserved.v1", "run-1"),
        ("inventory.reserved.v1", "run-2"),
        ("inventory.reserved.v1", "run-3"),
        ("inventory.reservation_failed.v1", "run-4"),
        ("inventory.reserved.v1", "run-5"),
        ("inventory.reserved.v1", "run-6"),
        ("inventory.reservation_failed.v1", "run-7"),
        ("inventory.committed.v1", "run-1"),
        ("inventory.committed.v1", "run-1"),
        ("inventory.committed.v1", "run-3"),
        ("inventory.committed.v1", "run-3"),
        ("inventory.committed.v1", "run-5"),
    ]
    reserved = {
        e["payload"]["order_id"]: e["payload"]
        for e in state["outbox"]
        if e["event_type"] == "inventory.reserved.v1"
    }
    assert allocations(reserved["run-2"]) == [("1", "MUG", "WH-B", 2)]
    assert allocations(reserved["run-3"]) == [("1", "MUG", "WH-A", 1), ("1", "MUG", "WH-B", 2)]
    assert [
        (b["quantity"], b["expected_restock_date"])
        for run in ("run-5", "run-6")
        for b in reserved[run]["backordered"]
    ] == [(2, str(today + timedelta(days=7))), (2, str(today + timedelta(days=14)))]

    levels = [
        (p["sku"], p["warehouse_id"], p["version"], p["on_hand"], p["reserved"])
        for e in state["outbox"]
        if e["event_type"] == "stock.level_changed.v1" and (p := e["payload"])["version"] > 1
    ]
    assert levels == [
        ("MUG", "WH-A", 2, 3, 2),  # run-1
        ("MUG", "WH-B", 2, 4, 2),  # run-2
        ("MUG", "WH-A", 3, 3, 3),  # run-3, one event per row it changed
        ("MUG", "WH-B", 3, 4, 4),
        ("HOODIE", "WH-A", 2, 1, 1),  # run-5
        ("LAMP", "WH-A", 2, 2, 1),  # run-6
        ("MUG", "WH-A", 4, 2, 2),  # SHP-1
        ("MUG", "WH-A", 5, 1, 1),  # SHP-2
        ("MUG", "WH-B", 4, 2, 2),  # SHP-4
        ("MUG", "WH-A", 6, 0, 0),  # SHP-5
        ("HOODIE", "WH-A", 3, 0, 0),  # SHP-6
    ]
    assert state["reservations"] == [
        ("run-1", "committed", "GB", None),
        ("run-2", "held", "GB", None),
        ("run-3", "committed", "GB", None),
        ("run-4", "failed", "GB", None),
        ("run-5", "held", "GB", None),
        ("run-6", "held", "GB", None),
        ("run-7", "failed", "GB", None),
        ("run-9", "cancelled", None, None),
    ]
    assert [s[0] for s in state["shipments"]] == [f"SHP-{n}" for n in range(1, 8)]


async def publish_in_one_partition(stack: Stack, topic: str, messages: list[Any]) -> None:
    """Records of several orders under one key: one partition, so they reach the
    service in this order (by order id they would spread over the partitions)."""
    envelopes = [
        Envelope(type=m.TYPE, source="test/storefront", data=m.to_json(), subject=m.subject)
        for m in messages
    ]
    await stack.publish(topic, [(b"one-run", e.data, to_headers(e)) for e in envelopes])


async def both_consumed(
    batched: ServiceProcess, one_by_one: ServiceProcess, topic: str, count: int
) -> None:
    async def done() -> bool:
        for process in (batched, one_by_one):
            if await process.metric("conveyor_events_consumed_total", topic=topic) < count:
                return False
        return True

    await eventually(done, timeout_s=60, what=f"both inventories consumed {count} of {topic}")


async def applied_in_one_run(process: ServiceProcess, topic: str) -> None:
    """One poll brought every record of ``topic``, and it was never redone record by
    record (which would hide a broken run behind the one-by-one fallback)."""
    assert await process.metric("conveyor_batch_size_count", topic=topic) == 1
    assert await process.metric("conveyor_retries_total", kind="handler") == 0
    assert await process.metric("conveyor_dead_letters_total") == 0


async def inventory_state(database_url: str) -> dict[str, list[Any]]:
    """Every table a placement or shipment writes, and the outbox in order (without the
    ids and times that differ from run to run)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": S})
    try:
        state = {
            name: [tuple(r) for r in await conn.fetch(sql)]
            for name, sql in {
                "stock": """SELECT sku, warehouse_id, on_hand, reserved, safety_stock, version
                            FROM stock ORDER BY sku, warehouse_id""",
                "reservations": """SELECT order_id, status, ship_country, ship_region
                                   FROM reservations ORDER BY order_id""",
                "allocations": """SELECT r.order_id, a.line_id, a.sku, a.warehouse_id,
                                         a.quantity, a.committed
                                  FROM allocations a JOIN reservations r USING (reservation_id)
                                  ORDER BY r.order_id, a.line_id, a.warehouse_id""",
                "backorders": """SELECT r.order_id, b.line_id, b.sku, b.quantity,
                                        b.expected_restock_date
                                 FROM backorders b JOIN reservations r USING (reservation_id)
                                 ORDER BY b.seq""",
                "shipments": """SELECT s.shipment_id, s.order_id, s.warehouse_id, r.order_id
                                FROM shipments s JOIN reservations r USING (reservation_id)
                                ORDER BY s.shipment_id""",
            }.items()
        }
        outbox = await conn.fetch("SELECT topic, key, event_type, payload FROM outbox ORDER BY id")
    finally:
        await conn.close()
    state["outbox"] = [
        {
            "topic": r["topic"],
            "key": r["key"],
            "event_type": r["event_type"],
            "payload": {k: v for k, v in json.loads(r["payload"]).items() if k != "occurred_at"},
        }
        for r in outbox
    ]
    return state
