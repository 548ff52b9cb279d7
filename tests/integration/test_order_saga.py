"""The confirmation saga in the order service, seen through the portal.

The order service and the portal run as real processes on a real broker and database;
the verdicts of payment, inventory and risk are published as those services publish
them, so the test controls which arrives first.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import asyncpg
import httpx

from shared.schemas import Message
from shared.schemas.events.order import CancelOrder, DecideReview
from tests.factories import (
    authorized,
    declined,
    out_of_stock,
    reserved,
    risk,
    stock_level,
    submission_body,
)
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

TOPIC = {
    "payment": "payment.events",
    "inventory": "inventory.events",
    "risk": "risk.events",
    "order": "order.commands",
}


async def verdicts(stack: Stack, *messages: Message) -> None:
    """Publish each on its context's topic, in the given order."""
    for message in messages:
        await stack.publish_messages(TOPIC[message.TYPE.split(".")[0]], [message])


async def place(order: ServiceProcess, reference: str, **overrides: Any) -> str:
    async with httpx.AsyncClient(base_url=order.url) as http:
        response = await http.post("/orders", json=submission_body(reference, **overrides))
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


async def view(portal: ServiceProcess, order_id: str, min_version: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=portal.url, timeout=40) as http:
        response = await http.get(
            f"/orders/{order_id}", params={"min_version": min_version, "wait_ms": 30_000}
        )
    assert response.headers.get("Conveyor-Caught-Up") == "true", response.text
    return dict(response.json())


async def order_events(stack: Stack, order_id: str) -> list[str]:
    records = await stack.read_topic("order.events")
    return [str(header(r, "ce_type")) for r in records if data(r)["order_id"] == order_id]


async def test_saga_decides_on_every_branch_whichever_arrives_first(stack: Stack) -> None:
    order = await stack.start("order")
    portal = await stack.start("portal")
    ids = {ref: await place(order, ref) for ref in ("OK", "DECLINED", "NO-STOCK", "BACK", "HELD")}

    await verdicts(stack, authorized(ids["OK"]), reserved(ids["OK"]), risk(ids["OK"]))
    # the failing branch first, then the others, which must change nothing
    await verdicts(stack, declined(ids["DECLINED"]))
    assert (await view(portal, ids["DECLINED"], 2))["status"] == "cancelled"
    await verdicts(stack, reserved(ids["DECLINED"]), risk(ids["DECLINED"]))
    # the failing branch last
    await verdicts(stack, authorized(ids["NO-STOCK"]), risk(ids["NO-STOCK"]))
    await verdicts(stack, out_of_stock(ids["NO-STOCK"]))
    restock = date(2026, 4, 1)
    await verdicts(
        stack,
        reserved(ids["BACK"], backordered_until=restock),
        authorized(ids["BACK"]),
        risk(ids["BACK"]),
    )
    await verdicts(
        stack, authorized(ids["HELD"]), reserved(ids["HELD"]), risk(ids["HELD"], "review")
    )

    ok = await view(portal, ids["OK"], 2)
    assert (ok["status"], ok["payment_status"], ok["stock_status"]) == (
        "confirmed",
        "authorized",
        "reserved",
    )
    assert {r["warehouse_id"] for r in ok["reservations"]} == {"wh-london", "wh-leeds"}
    steps = [step["event_type"] for step in ok["timeline"]]
    assert steps[0] == "order.placed.v1" and steps[-1] == "order.confirmed.v1"
    assert {"payment.authorized.v1", "inventory.reserved.v1", "risk.assessed.v1"} <= set(steps)

    cancelled = await view(portal, ids["DECLINED"], 2)
    assert [r["code"] for r in cancelled["reasons"]] == ["payment_declined"]
    no_stock = await view(portal, ids["NO-STOCK"], 2)
    assert (no_stock["status"], [r["code"] for r in no_stock["reasons"]]) == (
        "cancelled",
        ["out_of_stock"],
    )
    back = await view(portal, ids["BACK"], 2)
    assert back["status"] == "confirmed" and back["expected_ship_date"] == restock.isoformat()
    assert [line["sku"] for line in back["backordered"]] == ["TEE-M"]

    held = await view(portal, ids["HELD"], 2)
    assert held["status"] == "awaiting_review"
    await verdicts(stack, DecideReview(order_id=ids["HELD"], decision="release", staff_id="s-1"))
    assert (await view(portal, ids["HELD"], 3))["status"] == "confirmed"

    # requests the order's state does not allow are refused and recorded, nothing emitted
    await verdicts(
        stack,
        CancelOrder(order_id=ids["OK"], requested_by="customer", actor_id="someone-else"),
        DecideReview(order_id=ids["OK"], decision="reject", staff_id="s-1"),
        CancelOrder(order_id=ids["DECLINED"], requested_by="staff", actor_id="s-1"),
    )

    async def refused() -> list[str]:
        rows = await stack.query("SELECT code FROM order_service.refused_requests ORDER BY code")
        return [r["code"] for r in rows] if len(rows) == 3 else []

    codes = await eventually(refused, what="three refusals recorded")
    assert codes == ["not_in_review", "not_your_order", "too_late_to_cancel"]

    # exactly one decision per order, whatever came late
    assert await order_events(stack, ids["DECLINED"]) == ["order.placed.v1", "order.cancelled.v1"]
    assert await order_events(stack, ids["OK"]) == ["order.placed.v1", "order.confirmed.v1"]
    assert await order_events(stack, ids["NO-STOCK"]) == ["order.placed.v1", "order.cancelled.v1"]
    assert await order_events(stack, ids["HELD"]) == [
        "order.placed.v1",
        "order.awaiting_review.v1",
        "order.confirmed.v1",
    ]


async def test_customer_cancels_and_watches_it_live(stack: Stack) -> None:
    order = await stack.start("order")
    portal = await stack.start("portal")
    order_id = await place(order, "CANCEL-ME")
    await verdicts(stack, authorized(order_id), reserved(order_id), risk(order_id))
    await view(portal, order_id, 2)

    async with httpx.AsyncClient(base_url=portal.url, timeout=30) as http:
        seen: list[str] = []

        async def watch() -> None:
            async with http.stream("GET", f"/orders/{order_id}/stream") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        seen.append(json.loads(line.removeprefix("data:"))["status"])
                        if seen[-1] == "cancelled":
                            return

        watcher = asyncio.create_task(watch())
        stranger = await http.post(f"/orders/{order_id}/cancel", json={"customer_id": "someone"})
        assert stranger.status_code == 404
        accepted = await http.post(
            f"/orders/{order_id}/cancel", json={"customer_id": "cust-CANCEL-ME", "reason": "oops"}
        )
        assert accepted.status_code == 202
        after = await http.get(accepted.json()["track"])
        assert after.json()["status"] == "cancelled"
        assert [r["code"] for r in after.json()["reasons"]] == ["customer_requested"]
        await asyncio.wait_for(watcher, 30)
        assert seen[0] == "confirmed" and seen[-1] == "cancelled"

        again = await http.post(
            f"/orders/{order_id}/cancel", json={"customer_id": "cust-CANCEL-ME"}
        )
        assert again.status_code == 409
    cancelled = [
        data(r)
        for r in await stack.read_topic("order.events")
        if header(r, "ce_type") == "order.cancelled.v1"
    ]
    assert [c["cancelled_by"] for c in cancelled] == ["customer"]


async def test_history_inventory_and_rebuild_from_offset_zero(stack: Stack) -> None:
    order = await stack.start("order")
    portal = await stack.start("portal")
    customer = {"customer_id": "cust-many", "email": "many@example.com"}
    ids = [await place(order, f"MANY-{n}", customer=customer) for n in range(5)]
    await verdicts(stack, *(m for i in ids[:3] for m in (authorized(i), reserved(i), risk(i))))
    await verdicts(stack, declined(ids[3]))
    await stack.publish_messages(
        "stock.events",
        [
            stock_level("MUG-BLUE", "wh-london", available=8, version=1),
            stock_level("MUG-BLUE", "wh-leeds", available=3, version=1),
            stock_level("MUG-BLUE", "wh-london", available=6, version=2),
            stock_level("MUG-BLUE", "wh-london", available=8, version=1),  # stale: ignored
        ],
    )
    for order_id, version in zip(ids, (2, 2, 2, 2, 1), strict=True):
        await view(portal, order_id, version)

    async with httpx.AsyncClient(base_url=portal.url) as http:
        pages, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/customers/cust-many/orders", params=params)).json()
            pages.append([o["order_id"] for o in page["orders"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [2, 2, 1]
        assert sorted(o for page in pages for o in page) == sorted(ids)
        assert (await http.get("/customers/nobody/orders")).json()["orders"] == []

        async def mug() -> dict[str, Any]:
            return dict((await http.get("/inventory/MUG-BLUE")).json())

        mug_now = await mug()
        assert mug_now["available"] == 9
        assert {w["warehouse_id"]: w["available"] for w in mug_now["warehouses"]} == {
            "wh-london": 6,
            "wh-leeds": 3,
        }
        in_london = (await http.get("/inventory", params={"warehouse": "wh-london"})).json()
        assert [s["sku"] for s in in_london["stock"]] == ["MUG-BLUE"]
        assert (await http.get("/inventory/NO-SUCH-SKU")).status_code == 404

    # a second portal, with its own database and consumer group, reads from offset 0
    rebuilt_db = stack.sibling_database("rebuild")
    rebuild = stack.service("portal", consumer_group="portal-rebuild", instance_id="rebuild")
    rebuild.env["DATABASE_URL"] = rebuilt_db
    await rebuild.start().ready()
    live = await projection(stack.database_url)

    async def caught_up() -> bool:
        rebuilt = await projection(rebuilt_db)
        return len(rebuilt["order_timeline"]) == len(live["order_timeline"])

    await eventually(caught_up, timeout_s=60, what="the rebuild to catch up")
    rebuilt = await projection(rebuilt_db)
    for table, rows in live.items():
        assert rebuilt[table] == rows, table


PRIMARY_KEYS = {
    "orders": "order_id",
    "order_timeline": "order_id, event_id",
    "stock_levels": "sku, warehouse_id",
}


async def projection(database_url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "portal_service"})
    try:
        return {
            table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]
            for table, key in PRIMARY_KEYS.items()
        }
    finally:
        await conn.close()
