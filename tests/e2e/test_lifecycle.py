"""From the storefront to the customer's door with every service a real process; then
500 orders while PostgreSQL is killed under all the services, and then each service in
turn is killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.fulfillment.shipping.app import DEV_WEBHOOK_SECRET
from services.fulfillment.shipping.webhook import signed_headers
from shared.runtime.infra.embedded import EmbeddedPostgres, create_database
from shared.runtime.infra.stack import Infrastructure
from shared.runtime.storefront import DEMO_PRODUCTS, Product, publish_orders
from shared.schemas import dlq_topic
from shared.schemas.events.inventory import ReceiveStock
from tests.e2e.lifecycle import SERVICES, TERMINAL, ample_seed, orders, start_pipeline, statuses
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

# backorderable in the demo catalog; the test empties its stock
BACKORDERED = Product("HOODIE-L-GREY", 4500)
ORDER_LIFECYCLE = [
    "order.placed.v1",
    "order.confirmed.v1",
    "order.picking_started.v1",
    "order.packed.v1",
    "order.shipped.v1",
    "order.delivered.v1",
    "order.completed.v1",
]


async def portal_view_when(
    portal: httpx.AsyncClient, order_id: str, shows: str, what: str, check: Any
) -> dict[str, Any]:
    """The portal's view of the order once it has ``shows`` (picking, shipments) and
    passes ``check``."""

    async def matches() -> dict[str, Any] | None:
        view = (await portal.get(f"/orders/{order_id}")).json()
        return view if view.get(shows) and check(view) else None

    return await eventually(matches, timeout_s=120, what=what)


async def two_units_picked_by_hand(
    stack: Stack, seed: Path, run_id: str, product: Product
) -> tuple[dict[str, ServiceProcess], str]:
    """Every service, with the simulated picker off (the test reports picks through the
    handheld API), and one order of two units of ``product``: (pipeline, order id)."""
    by_hand = {"fulfillment.picking": {"picking_simulator": "false",
                                       "picking_strategy": "single_order"}}  # fmt: skip
    pipeline = await start_pipeline(stack, seed, by_hand)
    [body] = orders(1, run_id)
    price = product.unit_price_minor
    body["lines"] = [{"sku": product.sku, "quantity": 2, "unit_price_minor": price}]
    body["total_minor"] = body["shipping_minor"] + 2 * price
    async with httpx.AsyncClient(base_url=pipeline["order"].url) as http:
        placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    return pipeline, placed.json()["order_id"]


async def test_one_order_travels_to_the_door(stack: Stack, tmp_path: Path) -> None:
    pipeline = await start_pipeline(stack, ample_seed(tmp_path, 100))
    [body] = orders(1, "door")
    async with httpx.AsyncClient(base_url=pipeline["order"].url) as http:
        placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]

    async with httpx.AsyncClient(base_url=pipeline["portal"].url) as http:

        async def completed() -> dict[str, Any] | None:
            view = (await http.get(f"/orders/{order_id}")).json()
            return view if view.get("status") == "completed" else None

        view = await eventually(completed, timeout_s=120, what="the order to be completed")

    steps = [s["event_type"] for s in view["timeline"]]
    assert [s for s in steps if s.startswith("order.")] == ORDER_LIFECYCLE
    for stage in (
        "picking.task_created.v1",
        "picking.completed.v1",
        "packing.packed.v1",
        "shipping.label_purchased.v1",
        "shipment.dispatched.v1",
        "shipment.tracking_updated.v1",
        "shipment.delivered.v1",
        "payment.captured.v1",
        "inventory.committed.v1",
    ):
        assert stage in steps, f"{stage} missing from the timeline"
    assert steps.index("picking.completed.v1") < steps.index("packing.packed.v1")
    assert steps.index("shipment.dispatched.v1") < steps.index("shipment.delivered.v1")
    [shipment] = view["shipments"]
    assert shipment["status"] == "delivered" and shipment["tracking_number"]
    assert {p["package_id"] for p in shipment["packages"]} == {
        p["package_id"] for p in view["packages"]
    }
    assert view["estimated_delivery"] is not None
    assert view["payment_status"] == "captured" and view["stock_status"] == "shipped"


async def test_a_backorder_served_where_the_order_shipped_is_a_shipment_of_its_own(
    stack: Stack, tmp_path: Path
) -> None:
    """A line waits for stock while the rest ships; the goods then arrive at the
    warehouse that shipped it: the units are picked, packed and shipped as a second
    shipment, and the order is delivered only when that one is."""
    seed_path = ample_seed(tmp_path, 100)
    seed = json.loads(seed_path.read_text())
    for row in seed["stock"]:
        if row["sku"] == BACKORDERED.sku:
            row["on_hand"] = 0
    seed_path.write_text(json.dumps(seed))
    pipeline = await start_pipeline(stack, seed_path)
    [body] = orders(1, "backorder")
    lines = [(DEMO_PRODUCTS[0], 2), (BACKORDERED, 1)]
    body["lines"] = [
        {"sku": p.sku, "quantity": q, "unit_price_minor": p.unit_price_minor} for p, q in lines
    ]
    body["total_minor"] = body["shipping_minor"] + sum(p.unit_price_minor * q for p, q in lines)
    async with httpx.AsyncClient(base_url=pipeline["order"].url) as http:
        placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    portal = httpx.AsyncClient(base_url=pipeline["portal"].url)

    view_when = partial(portal_view_when, portal, order_id, "shipments")

    try:
        view = await view_when(
            "the in-stock line delivered",
            lambda v: [s["status"] for s in v["shipments"]] == ["delivered"],
        )
        assert view["status"] == "shipped", "a line still waits for stock"
        [first] = view["shipments"]

        receipt = ReceiveStock(
            sku=BACKORDERED.sku, warehouse_id=first["warehouse_id"], quantity=5,
            receipt_id="R-backorder", received_by="test",
        )  # fmt: skip
        await stack.publish_messages("inventory.commands", [receipt])
        view = await view_when("completion", lambda v: v["status"] == "completed")
    finally:
        await portal.aclose()

    shipments = view["shipments"]
    assert len(shipments) == 2 and all(s["status"] == "delivered" for s in shipments)
    assert {s["warehouse_id"] for s in shipments} == {first["warehouse_id"]}
    [second] = [s for s in shipments if s["shipment_id"] != first["shipment_id"]]
    second_packages = {p["package_id"] for p in second["packages"]}
    contents = [
        (item["sku"], item["quantity"])
        for package in view["packages"]
        if package["package_id"] in second_packages
        for item in package["items"]
    ]
    assert contents == [(BACKORDERED.sku, 1)], "the second parcel carries the backordered unit"
    steps = [s["event_type"] for s in view["timeline"]]
    assert [s for s in steps if s.startswith("order.")] == ORDER_LIFECYCLE
    assert view["stock_status"] == "shipped"
    stock = await stack.query(
        "SELECT on_hand, reserved FROM inventory_service.stock "
        "WHERE sku = $1 AND warehouse_id = $2",
        BACKORDERED.sku, first["warehouse_id"],
    )  # fmt: skip
    assert [(r["on_hand"], r["reserved"]) for r in stock] == [(4, 0)], "received 5, shipped 1"


@pytest.mark.parametrize("found", [1, 0], ids=["one-of-two-found", "none-found"])
async def test_units_a_picker_did_not_find_are_allocated_again_and_shipped(
    stack: Stack, tmp_path: Path, found: int
) -> None:
    """A handheld reports a line short: inventory writes the missing units off and holds
    others; they are picked in a task of their own and leave as a shipment of their own,
    and the order is delivered only when that one is. With none found, the first
    warehouse has nothing to pack (packing.nothing_picked) and ships nothing."""
    missing = 2 - found
    product = DEMO_PRODUCTS[0]
    pipeline, order_id = await two_units_picked_by_hand(
        stack, ample_seed(tmp_path, 100), "short", product
    )
    portal = httpx.AsyncClient(base_url=pipeline["portal"].url)
    picking = httpx.AsyncClient(base_url=pipeline["fulfillment.picking"].url)

    view_when = partial(portal_view_when, portal, order_id, "picking")

    try:
        view = await view_when("a pick task", lambda v: len(v["picking"]) == 1)
        [first] = view["picking"]
        [item] = (await picking.get(f"/tasks/{first['task_id']}")).json()["items"]
        short = {"sku": item["sku"], "picker_id": "ada", "confirmation_id": "c-1", "found": found}
        reported = await picking.post(f"/tasks/{first['task_id']}/short", json=short)
        assert reported.status_code == 200, reported.text

        view = await view_when("a second task", lambda v: len(v["picking"]) == 2)
        [again] = [t for t in view["picking"] if t["task_id"] != first["task_id"]]
        [item] = (await picking.get(f"/tasks/{again['task_id']}")).json()["items"]
        assert item["quantity"] == missing, "only the missing units are picked again"
        scan = {"sku": item["sku"], "location": item["location"], "quantity": missing,
                "picker_id": "ada", "confirmation_id": "c-2"}  # fmt: skip
        picked = await picking.post(f"/tasks/{again['task_id']}/scans", json=scan)
        assert picked.status_code == 200, picked.text

        view = await view_when("completion", lambda v: v["status"] == "completed")
    finally:
        await portal.aclose()
        await picking.aclose()

    shipments = view["shipments"]
    assert len(shipments) == (2 if found else 1)
    assert all(s["status"] == "delivered" for s in shipments)
    reasons = [r["code"] for step in view["timeline"] for r in step.get("reasons") or []]
    assert "short_pick" in reasons, "the customer is told"
    shipped = sorted(
        (line["sku"], line["quantity"]) for package in view["packages"] for line in package["items"]
    )
    assert shipped == sorted([(product.sku, n) for n in (found, missing) if n]), (
        "what was found, then what was allocated again"
    )
    warehouses = {first["warehouse_id"], again["warehouse_id"]}
    stock = await stack.query(
        "SELECT warehouse_id, on_hand, reserved FROM inventory_service.stock WHERE sku = $1",
        product.sku,
    )
    levels = {r["warehouse_id"]: (r["on_hand"], r["reserved"]) for r in stock}
    written_off, shipped_units = missing, 2
    assert sum(levels[w][0] for w in warehouses) == 100 * len(warehouses) - written_off - (
        shipped_units
    )
    assert all(reserved == 0 for _, reserved in levels.values())


async def test_an_order_none_of_whose_units_can_be_had_is_cancelled_and_voided(
    stack: Stack, tmp_path: Path
) -> None:
    """The only two units of the SKU anywhere are not on their shelf, and the SKU may
    not be backordered: the units are written off, nothing can be held again, so the order is
    cancelled by the system (not shown packed, shipped and delivered with nothing in
    it), the authorization is voided, and nothing is left reserved or dead-lettered."""
    product = DEMO_PRODUCTS[0]
    seed_path = ample_seed(tmp_path, 100)
    seed = json.loads(seed_path.read_text())
    kept = seed["warehouses"][0]["warehouse_id"]
    seed["stock"] = [r for r in seed["stock"] if r["sku"] != product.sku] + [
        {"sku": product.sku, "warehouse_id": kept, "on_hand": 2}  # the order's two units
    ]
    seed_path.write_text(json.dumps(seed))
    pipeline, order_id = await two_units_picked_by_hand(stack, seed_path, "unsuppliable", product)
    portal = httpx.AsyncClient(base_url=pipeline["portal"].url)
    picking = httpx.AsyncClient(base_url=pipeline["fulfillment.picking"].url)
    view_when = partial(portal_view_when, portal, order_id, "picking")
    try:
        view = await view_when("a pick task", lambda v: len(v["picking"]) == 1)
        [task] = view["picking"]
        assert task["warehouse_id"] == kept
        short = {"sku": product.sku, "picker_id": "ada", "confirmation_id": "c-1", "found": 0}
        reported = await picking.post(f"/tasks/{task['task_id']}/short", json=short)
        assert reported.status_code == 200, reported.text
        view = await view_when(
            "cancelled, payment voided",
            lambda v: v["status"] == "cancelled" and v["payment_status"] == "voided",
        )
    finally:
        await portal.aclose()
        await picking.aclose()

    assert view["reasons"] and view["reasons"][0]["code"] == "nothing_supplied"
    steps = [s["event_type"] for s in view["timeline"]]
    assert [s for s in steps if s.startswith("order.")] == [
        *ORDER_LIFECYCLE[:3],
        "order.cancelled.v1",
    ], "never packed, shipped or delivered"
    assert "packing.nothing_picked.v1" in steps
    assert view["shipments"] == [] and view["packages"] == []
    stock = await stack.query(
        "SELECT on_hand, reserved FROM inventory_service.stock WHERE sku = $1", product.sku
    )
    assert [(r["on_hand"], r["reserved"]) for r in stock] == [(0, 0)], "both written off"
    for service_name in ("order", "payment", "inventory", "portal"):
        assert await stack.read_topic(dlq_topic(service_name)) == [], f"{service_name} DLQ"


async def test_delays_and_delivery_exceptions_reach_the_portal(
    stack: Stack, tmp_path: Path
) -> None:
    """The carrier, not the simulator, reports here: through the signed webhook."""
    no_simulated_carrier = {"fulfillment.shipping": {"shipping_simulator_enabled": "false"}}
    pipeline = await start_pipeline(stack, ample_seed(tmp_path, 100), no_simulated_carrier)
    [body] = orders(1, "late")
    async with httpx.AsyncClient(base_url=pipeline["order"].url) as http:
        order_id = (await http.post("/orders", json=body)).json()["order_id"]
    portal = httpx.AsyncClient(base_url=pipeline["portal"].url)
    shipping = httpx.AsyncClient(base_url=pipeline["fulfillment.shipping"].url)

    view_when = partial(portal_view_when, portal, order_id, "shipments")

    async def carrier_says(scan_id: str, status: str, **extra: str) -> None:
        raw = json.dumps(
            {"tracking_number": shipment["tracking_number"], "carrier_event_id": scan_id,
             "status": status, "occurred_at": datetime.now(UTC).isoformat(), **extra}
        ).encode()  # fmt: skip
        url = f"/carriers/{shipment['carrier']}/webhook"
        response = await shipping.post(url, content=raw, headers={
            **signed_headers(raw, DEV_WEBHOOK_SECRET),
            "Content-Type": "application/json",
        })  # fmt: skip
        assert response.status_code == 202, response.text

    try:
        view = await view_when("the order shipped", lambda v: v["status"] == "shipped")
        [shipment] = view["shipments"]
        later = date.fromisoformat(view["estimated_delivery"]) + timedelta(days=3)

        await carrier_says("c-1", "delayed", description="Storm at the hub",
                           estimated_delivery=later.isoformat())  # fmt: skip
        view = await view_when("the delay", lambda v: v["status"] == "delivery_exception")
        assert view["shipments"][0]["status"] == "delayed"
        assert view["estimated_delivery"] == later.isoformat(), "the customer sees the new date"
        [step] = [s for s in view["timeline"] if s["event_type"] == "shipment.exception.v1"]
        assert step["detail"]["status"] == "delayed" and step["reasons"]

        await carrier_says("c-2", "delivery_exception", description="Nobody at home")
        view = await view_when(
            "the failed attempt",
            lambda v: v["shipments"][0]["status"] == "delivery_exception",
        )
        exceptions = [s for s in view["timeline"] if s["event_type"] == "shipment.exception.v1"]
        assert [s["detail"]["status"] for s in exceptions] == ["delayed", "delivery_exception"]

        await carrier_says("c-3", "delivered", location="Front door")
        view = await view_when("completion", lambda v: v["status"] == "completed")
        assert view["shipments"][0]["status"] == "delivered"
    finally:
        await portal.aclose()
        await shipping.aclose()


@pytest.fixture
def own_postgres(infra: Infrastructure, tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which it may kill: not the session's."""
    if infra.kind != "embedded":
        pytest.skip("kills and restarts an embedded PostgreSQL")
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data", durable=False)
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()


def crash_and_restart(postgres: EmbeddedPostgres) -> None:
    """SIGKILL of the postmaster, then a start on the same data: crash recovery."""
    assert postgres.proc is not None
    postgres.proc.kill()
    postgres.proc.wait()
    postgres.start(timeout_s=60)


@pytest.mark.timeout(900)
async def test_every_order_finishes_while_each_service_is_killed_in_turn(
    stack: Stack, own_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    create_database(own_postgres.url(), "fault")
    stack.database_url = own_postgres.url("fault")
    units = 5000
    # some lines picked short: their units are written off and allocated again, so the
    # later rounds, nothing-picked warehouses and second shipments run under the kills too
    shorts = {"fulfillment.picking": {"picking_simulated_short_probability": "0.05"}}
    pipeline = await start_pipeline(stack, ample_seed(tmp_path, units), shorts)
    seed_rows = await stack.query("SELECT sku, warehouse_id, on_hand FROM inventory_service.stock")
    bodies = orders(500, "fault")
    publishing = asyncio.create_task(publish_orders(stack.bootstrap, bodies, rate=10))

    # first the database under all of them, while orders come in and move: an outage
    # every service rides out without exiting
    async def flowing() -> bool:
        return sum((await statuses(stack)).values()) >= 100

    await eventually(flowing, timeout_s=120, what="a hundred orders placed")
    pids = {name: service.proc.pid for name, service in pipeline.items() if service.proc}
    crash_and_restart(own_postgres)
    await asyncio.gather(*(service.ready(timeout_s=120) for service in pipeline.values()))
    assert {n: s.proc.pid for n, s in pipeline.items() if s.proc and s.proc.poll() is None} == (
        pids
    ), "no service exited or was restarted"
    assert not publishing.done(), "the database went down mid-run"

    for name in SERVICES:  # then each service in turn, while orders keep coming and moving
        service = pipeline[name]
        service.kill()
        await service.start().ready(timeout_s=120)

    await publishing

    async def all_finished() -> dict[str, int] | None:
        found = await statuses(stack)
        done = sum(n for status, n in found.items() if status in TERMINAL)
        return found if done == len(bodies) else None

    final = await eventually(all_finished, timeout_s=600, what="every order in a final state")
    assert final.get("completed", 0) > 0, final

    # money: at most one capture per order, at the gateway too
    captures = await by_order(stack, "payment.events", "payment.captured.v1", "capture_id")
    assert all(len(ids) == 1 for ids in captures.values())
    ledger = await stack.query(
        "SELECT count(*) AS n FROM payment_service.sandbox_gateway_ledger "
        "WHERE operation = 'capture'"
    )
    assert ledger[0]["n"] == len(captures), "one capture call per captured order"

    # one label per shipment, one shipment per package
    labels = await by_order(stack, "shipping.events", "shipping.label_purchased.v1", "shipment_id")
    dispatched = await stack.read_topic("shipping.events")
    shipments_of_package: dict[str, set[str]] = defaultdict(set)
    shipped_units: Counter[tuple[str, str]] = Counter()
    seen_shipments = set()
    for record in dispatched:
        if header(record, "ce_type") != "shipment.dispatched.v1":
            continue
        event = data(record)
        for package in event["packages"]:
            shipments_of_package[package["package_id"]].add(event["shipment_id"])
        if event["shipment_id"] in seen_shipments:
            continue  # the relay may publish a row twice after a kill; same ce_id
        seen_shipments.add(event["shipment_id"])
        for package in event["packages"]:
            for item in package["items"]:
                shipped_units[(item["sku"], event["warehouse_id"])] += item["quantity"]
    assert all(len(s) == 1 for s in shipments_of_package.values())
    assert {s for ids in labels.values() for s in ids} == seen_shipments

    # stock on hand = seed - shipped units - units written off by short picks
    stock = await stack.query("SELECT sku, warehouse_id, on_hand FROM inventory_service.stock")
    written_off: Counter[tuple[str, str]] = Counter()
    for row in await stack.query(
        "SELECT sku, warehouse_id, written_off FROM inventory_service.short_picks"
    ):
        written_off[(row["sku"], row["warehouse_id"])] += row["written_off"]
    expected = {(r["sku"], r["warehouse_id"]): r["on_hand"] for r in seed_rows}
    assert {(r["sku"], r["warehouse_id"]): r["on_hand"] for r in stock} == {
        key: on_hand - shipped_units[key] - written_off[key] for key, on_hand in expected.items()
    }
    assert sum(shipped_units.values()) > 0
    assert sum(written_off.values()) > 0, "short picks happened and were written off"
    # nothing reserved is left behind once every order is final
    reserved = await stack.query("SELECT sum(reserved) AS n FROM inventory_service.stock")
    assert reserved[0]["n"] == 0

    # nothing dead-lettered
    for name in SERVICES:
        service_name = name.rsplit(".", 1)[-1]
        assert await stack.read_topic(dlq_topic(service_name)) == [], f"{service_name} DLQ"


async def by_order(stack: Stack, topic: str, type_: str, id_field: str) -> dict[str, set[str]]:
    """Distinct ``id_field`` values of ``type_`` events, per order."""
    found: dict[str, set[str]] = defaultdict(set)
    for record in await stack.read_topic(topic):
        if header(record, "ce_type") == type_:
            event = data(record)
            found[event["order_id"]].add(event[id_field])
    return found
