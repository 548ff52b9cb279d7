"""The whole confirmation stage with every service as a real process: order, payment
(sandbox gateway), inventory (demo catalog), risk (faust) and the portal."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.inventory.seed import seed_database
from shared.schemas import TOPICS, subscriptions
from tests.factories import submission, submission_body
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

SERVICES = ("order", "payment", "inventory", "risk", "portal")
SCHEMAS = ("order_service", "payment_service", "inventory_service", "portal_service")
SHIPPING_MINOR = 500
DECIDED = {"confirmed", "cancelled", "awaiting_review", "rejected"}


@pytest.fixture
async def pipeline(stack: Stack) -> dict[str, ServiceProcess]:
    started = await asyncio.gather(*(stack.start(name) for name in SERVICES))
    return dict(zip(SERVICES, started, strict=True))


def order_body(
    reference: str, lines: list[tuple[str, int]], token: str = "tok_approved"
) -> dict[str, Any]:
    """A valid submission for these (sku, quantity) lines at 10.00 each."""
    priced = [{"sku": sku, "quantity": qty, "unit_price_minor": 1000} for sku, qty in lines]
    total = sum(qty * 1000 for _, qty in lines) + SHIPPING_MINOR
    return submission_body(
        reference,
        lines=priced,
        total_minor=total,
        shipping_minor=SHIPPING_MINOR,
        payment={"method": "card", "token": token},
    )


async def place(order: ServiceProcess, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=order.url) as http:
        response = await http.post("/orders", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


async def tracked(portal: ServiceProcess, order_id: str, until: Any, what: str) -> dict[str, Any]:
    """The portal's view of an order, once ``until(view)`` holds."""
    async with httpx.AsyncClient(base_url=portal.url) as http:

        async def check() -> dict[str, Any] | None:
            response = await http.get(f"/orders/{order_id}")
            view = response.json() if response.status_code == 200 else None
            return view if view and until(view) else None

        return await eventually(check, timeout_s=90, what=what)


def decided(view: dict[str, Any]) -> bool:
    return view["status"] in DECIDED


async def test_orders_are_confirmed_or_cancelled_and_compensated(
    stack: Stack, pipeline: dict[str, ServiceProcess]
) -> None:
    order, portal = pipeline["order"], pipeline["portal"]
    ids = {
        "happy": await place(order, order_body("E2E-OK", [("MUG-BLUE", 2), ("TEE-M", 1)])),
        "declined": await place(
            order, order_body("E2E-DECLINED", [("MUG-BLUE", 1)], token="tok_insufficient_funds")
        ),
        "no-stock": await place(order, order_body("E2E-NO-STOCK", [("TEE-L-BLACK", 10)])),
        "backorder": await place(order, order_body("E2E-BACK", [("HOODIE-L-GREY", 5)])),
        "cancel-me": await place(order, order_body("E2E-CANCEL", [("TEE-M-BLACK", 1)])),
    }

    happy = await tracked(portal, ids["happy"], decided, "the happy order decided")
    assert (happy["status"], happy["payment_status"], happy["stock_status"]) == (
        "confirmed",
        "authorized",
        "reserved",
    )
    assert {r["warehouse_id"] for r in happy["reservations"]} == {"WH-LON"}  # nearest to GB
    steps = [s["event_type"] for s in happy["timeline"]]
    assert steps[0] == "order.placed.v1" and steps[-1] == "order.confirmed.v1"
    assert {"payment.authorized.v1", "inventory.reserved.v1", "risk.assessed.v1"} <= set(steps)

    declined = await tracked(
        portal, ids["declined"], lambda v: v["stock_status"] == "released", "stock released"
    )
    assert declined["status"] == "cancelled"
    assert [r["code"] for r in declined["reasons"]] == ["payment_declined"]

    no_stock = await tracked(
        portal, ids["no-stock"], lambda v: v["payment_status"] == "voided", "payment voided"
    )
    assert no_stock["status"] == "cancelled"
    assert [r["code"] for r in no_stock["reasons"]] == ["out_of_stock"]

    back = await tracked(portal, ids["backorder"], decided, "the backorder decided")
    assert back["status"] == "confirmed"
    assert [(b["sku"], b["quantity"]) for b in back["backordered"]] == [("HOODIE-L-GREY", 2)]
    expected = datetime.now(UTC).date() + timedelta(days=14)  # PO-2001 in the demo catalog
    assert back["expected_ship_date"] == expected.isoformat()

    await tracked(portal, ids["cancel-me"], decided, "the order to cancel confirmed")
    async with httpx.AsyncClient(base_url=portal.url) as http:
        accepted = await http.post(
            f"/orders/{ids['cancel-me']}/cancel", json={"customer_id": "cust-E2E-CANCEL"}
        )
        assert accepted.status_code == 202
    cancelled = await tracked(
        portal,
        ids["cancel-me"],
        lambda v: v["payment_status"] == "voided" and v["stock_status"] == "released",
        "void and release after the customer's cancellation",
    )
    assert [r["code"] for r in cancelled["reasons"]] == ["customer_requested"]
    # each compensation happened exactly once
    for topic, type_ in (
        ("payment.events", "payment.voided.v1"),
        ("inventory.events", "inventory.released.v1"),
    ):
        records = await stack.read_topic(topic)
        done = [
            r
            for r in records
            if header(r, "ce_type") == type_ and data(r)["order_id"] == ids["cancel-me"]
        ]
        assert len(done) == 1, type_
    for service in pipeline.values():
        assert await service.metric("conveyor_dead_letters_total") == 0


async def test_redelivering_every_event_changes_nothing(
    stack: Stack, pipeline: dict[str, ServiceProcess]
) -> None:
    order, portal = pipeline["order"], pipeline["portal"]
    bodies = [
        order_body(
            f"REDO-{n}", [("MUG-BLUE", 1)], token="tok_declined" if n % 10 == 0 else "tok_approved"
        )
        for n in range(100)
    ]
    async with httpx.AsyncClient(base_url=order.url, timeout=30) as http:
        responses = await asyncio.gather(*(http.post("/orders", json=b) for b in bodies))
    ids = [r.json()["order_id"] for r in responses]
    for order_id in ids:
        await tracked(portal, order_id, decided, "every order decided")
    await quiet(stack, pipeline)
    before = await state(stack)
    rows = await stack.query("SELECT status FROM portal_service.orders")
    assert Counter(r["status"] for r in rows) == {"confirmed": 90, "cancelled": 10}

    topics = [t for t in TOPICS if await stack.read_topic(t)]
    for topic in topics:
        records = await stack.read_topic(topic)
        await stack.publish(topic, [(r.key, r.value, list(r.headers)) for r in records])
    await quiet(stack, pipeline)
    assert await state(stack) == before
    for name in ("order", "payment", "inventory", "portal"):
        seen = await pipeline[name].metric("conveyor_events_consumed_total", outcome="duplicate")
        assert seen > 0, f"{name} saw the redelivered events as duplicates"
    # risk keeps no inbox: it assesses again and re-publishes with the same ce_id
    assessments = await stack.read_topic("risk.events")
    assert len(assessments) > 2 * len(ids)
    assert len({header(r, "ce_id") for r in assessments}) == len(ids)


async def quiet(stack: Stack, pipeline: dict[str, ServiceProcess]) -> None:
    """Every service has consumed every record now in every topic it reads (twice in a row,
    so what a consumer published meanwhile is counted too)."""

    async def consumed_everything() -> bool:
        for name, service in pipeline.items():
            for topic in subscriptions(name):
                present = len(await stack.read_topic(topic))
                consumed = await service.metric("conveyor_events_consumed_total", topic=topic)
                if consumed < present:
                    return False
        return True

    for _ in range(2):
        await eventually(consumed_everything, timeout_s=120, what="all services to catch up")


async def state(stack: Stack) -> dict[str, list[str]]:
    """Every row of every service's tables, as text, in a stable order."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        tables = await conn.fetch(
            """SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
               WHERE table_schema = ANY($1) AND table_name NOT LIKE '\\_yoyo%' ORDER BY 1""",
            list(SCHEMAS),
        )
        snapshot = {}
        for table in tables:
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table['name']} t ORDER BY 1")
            snapshot[table["name"]] = [r["row"] for r in rows]
        return snapshot
    finally:
        await conn.close()


async def test_two_hundred_orders_race_for_fifty_units(stack: Stack, tmp_path: Path) -> None:
    """Exactly 50 confirmed, every other order cancelled as out of stock (its
    authorization voided), and availability never below zero — with two inventory
    processes taking orders at the same time."""
    seed = tmp_path / "race.json"
    seed.write_text(
        json.dumps(
            {
                "warehouses": [
                    {"warehouse_id": "WH-A", "name": "A", "region": "GB"},
                    {"warehouse_id": "WH-B", "name": "B", "region": "DE"},
                ],
                "skus": [{"sku": "RACE-1", "name": "Limited edition"}],
                "stock": [
                    {"sku": "RACE-1", "warehouse_id": "WH-A", "on_hand": 25},
                    {"sku": "RACE-1", "warehouse_id": "WH-B", "on_hand": 25},
                ],
            }
        )
    )
    await seed_database(stack.database_url, seed)
    names = (*SERVICES, "inventory")
    started = await asyncio.gather(
        *(stack.start(n, instance_id=f"{n}-{i}") for i, n in enumerate(names))
    )
    services = dict(zip((*SERVICES, "inventory-b"), started, strict=True))
    racers = [
        submission(f"RACE-{n}", lines=[{"sku": "RACE-1", "quantity": 1, "unit_price_minor": 1000}],
                   total_minor=1000 + SHIPPING_MINOR, shipping_minor=SHIPPING_MINOR)
        for n in range(200)
    ]  # fmt: skip
    await stack.publish_messages("order.commands", racers)

    async def all_decided() -> list[asyncpg.Record] | None:
        rows = await stack.query(
            "SELECT status, reasons FROM order_service.orders WHERE status = ANY($1)",
            ["confirmed", "cancelled"],
        )
        return rows if len(rows) == 200 else None

    decided_rows = await eventually(all_decided, timeout_s=240, what="all 200 orders decided")
    outcome = Counter(r["status"] for r in decided_rows)
    assert outcome == {"confirmed": 50, "cancelled": 150}
    reasons = Counter(
        json.loads(r["reasons"])[0]["code"] for r in decided_rows if r["status"] == "cancelled"
    )
    assert reasons == {"out_of_stock": 150}

    stock = await stack.query(
        "SELECT sum(reserved) AS held FROM inventory_service.stock WHERE sku = 'RACE-1'"
    )
    assert stock[0]["held"] == 50
    levels = [data(r) for r in await stack.read_topic("stock.events")]
    assert levels and all(level["available"] >= 0 for level in levels)
    assert all(
        level["on_hand"] - level["reserved"] - level["safety_stock"] >= 0 for level in levels
    )

    async def voided() -> bool:
        payments = [header(r, "ce_type") for r in await stack.read_topic("payment.events")]
        return payments.count("payment.voided.v1") == 150

    await eventually(voided, timeout_s=120, what="every cancelled order's authorization voided")
    for name in ("inventory", "inventory-b"):
        handled = await services[name].metric(
            "conveyor_events_consumed_total", topic="order.events", outcome="handled"
        )
        assert handled > 0, f"{name} took part"
