"""The picking service on a real broker and PostgreSQL.

Order and inventory events are published as those services publish them, so each test
controls which half of an order arrives first. The last test checks that runs of records
applied at once end as the same records one by one. The shipped layout (``seed/layout.json``)
gives the bins; strategies and the simulated picker are set per test through
``CONVEYOR_PICKING_*`` settings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from shared.schemas import Envelope, Message, to_headers
from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import ConfirmPick
from shared.schemas.events.inventory import (
    Allocation,
    BackorderAllocated,
    BackorderedLine,
    InventoryReserved,
)
from shared.schemas.events.order import OrderCancelled, OrderConfirmed
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

S = "picking_service"
SERVICE = "fulfillment.picking"
NOW = datetime.now(UTC)
Line = tuple[str, str, str, int]  # (line id, sku, warehouse, quantity)
# The background jobs must wake on NOTIFY and on deadlines: with these fallback polls a
# test that relied on polling would time out.
NO_POLLING = {"picking_release_poll_s": "300", "picking_simulator_poll_s": "300"}

# --- messages, as the order and inventory services publish them ---


def confirmed(order_id: str, backordered_skus: list[str] | None = None) -> OrderConfirmed:
    return OrderConfirmed(
        order_id=order_id,
        order_version=3,
        occurred_at=NOW,
        authorization_id=f"auth-{order_id}",
        reservation_id=f"res-{order_id}",
        backordered_skus=backordered_skus or [],
    )


def allocations(lines: list[Line]) -> list[Allocation]:
    return [
        Allocation(line_id=line, sku=sku, warehouse_id=wh, quantity=qty)
        for line, sku, wh, qty in lines
    ]


def reserved(
    order_id: str, lines: list[Line], backordered: list[tuple[str, str, int]] | None = None
) -> InventoryReserved:
    return InventoryReserved(
        order_id=order_id,
        reservation_id=f"res-{order_id}",
        occurred_at=NOW,
        allocations=allocations(lines),
        backordered=[
            BackorderedLine(line_id=line, sku=sku, quantity=qty)
            for line, sku, qty in backordered or []
        ],
    )


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        order_version=4,
        occurred_at=NOW,
        reasons=[Reason(code="customer_request", message="changed my mind")],
        cancelled_by="customer",
    )


TOPIC = {"order": "order.events", "inventory": "inventory.events", "picking": "picking.commands"}


async def publish(stack: Stack, *messages: Message, **envelope: Any) -> list[str]:
    """Each on its context's topic, in the given order (a run of messages for one topic
    goes out through one producer)."""
    ids: list[str] = []
    run: list[Message] = []
    for message in [*messages, None]:
        if run and (message is None or _topic(message) != _topic(run[0])):
            ids += await stack.publish_messages(_topic(run[0]), run, **envelope)
            run = []
        if message is not None:
            run.append(message)
    return ids


def _topic(message: Message) -> str:
    return TOPIC[message.TYPE.split(".")[0]]


# --- reading back ---


async def events(stack: Stack, type_: str, order_id: str | None = None) -> list[dict[str, Any]]:
    return [
        data(r)
        for r in await stack.read_topic("picking.events")
        if header(r, "ce_type") == type_ and (order_id is None or data(r)["order_id"] == order_id)
    ]


async def wait_for(
    stack: Stack, type_: str, count: int, order_id: str | None = None
) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await events(stack, type_, order_id)
        return found if len(found) >= count else None

    return await eventually(
        enough, timeout_s=60, what=f"{count} x {type_} for {order_id or 'any order'}"
    )


async def settled(stack: Stack, picking: ServiceProcess, consumed: int) -> None:
    """Until ``consumed`` records were consumed and everything they emitted is out."""
    await stack.settled(picking, consumed)


def items(task: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return [(i["line_id"], i["sku"], i["quantity"], i["location"]) for i in task["items"]]


def trips_of(by_order: dict[str, list[dict[str, Any]]], *orders: str) -> dict[str, list[str]]:
    """Released trip id → its orders."""
    trips: dict[str, list[str]] = {}
    for order in orders:
        for task in by_order.get(order, []):
            assert task["trip_id"], task
            trips.setdefault(task["trip_id"], []).append(order)
    return trips


def counts(completed: dict[str, Any]) -> list[tuple[str, str, int]]:
    return sorted((i["line_id"], i["sku"], i["quantity"]) for i in completed["picked"])


# --- the tests ---


async def test_tasks_wait_for_both_halves_then_the_simulated_picker_completes_them(
    stack: Stack,
) -> None:
    picking = await stack.start(
        SERVICE, picking_strategy="single_order", picking_simulated_pick_s="0", **NO_POLLING
    )
    one = [("1", "MUG-BLUE", "WH-LON", 2), ("2", "TEE-M", "WH-LON", 1)]
    split = [("1", "MUG-BLUE", "WH-LON", 1), ("2", "TEE-M-BLACK", "WH-BER", 3)]
    # confirmation first for one order, reservation first for the other
    await publish(stack, confirmed("ord-a"), reserved("ord-b", split))
    [first] = await publish(stack, reserved("ord-a", one))
    await publish(stack, confirmed("ord-b"))
    await publish(stack, reserved("ord-a", one), id=first)  # redelivered
    await publish(stack, reserved("ord-a", one), confirmed("ord-a"))  # re-emitted: new ce_ids

    completed = await wait_for(stack, "picking.completed.v1", 3)
    await settled(stack, picking, consumed=7)
    created = await events(stack, "picking.task_created.v1")
    assert len(created) == 3, created
    by_task = {t["task_id"]: t for t in created}
    assert {(t["order_id"], t["warehouse_id"]) for t in created} == {
        ("ord-a", "WH-LON"),
        ("ord-b", "WH-LON"),
        ("ord-b", "WH-BER"),
    }
    task_a = next(t for t in created if t["order_id"] == "ord-a")
    assert items(task_a) == [("2", "TEE-M", 1, "A-01-02"), ("1", "MUG-BLUE", 2, "H-04-02")]
    assert (task_a["strategy"], task_a["trip_id"], task_a["zone"]) == ("single_order", None, None)
    assert task_a["reservation_id"] == "res-ord-a"

    assert len(completed) == 3 and {c["task_id"] for c in completed} == set(by_task)
    for done in completed:
        task = by_task[done["task_id"]]
        assert counts(done) == sorted(
            (i["line_id"], i["sku"], i["quantity"]) for i in task["items"]
        )
        assert done["short_line_ids"] == []
    assert len(await events(stack, "picking.item_picked.v1")) == 4
    rows = await stack.query(f"SELECT status FROM {S}.tasks")
    assert {r["status"] for r in rows} == {"completed"} and len(rows) == 3


async def test_handheld_mispicks_are_rejected_and_a_short_pick_completes_the_task(
    stack: Stack,
) -> None:
    picking = await stack.start(
        SERVICE, picking_strategy="single_order", picking_simulator="false", **NO_POLLING
    )
    lines = [("1", "MUG-BLUE", "WH-LON", 2), ("2", "TEE-M", "WH-LON", 3)]
    await publish(stack, reserved("ord-h", lines), confirmed("ord-h"))
    [created] = await wait_for(stack, "picking.task_created.v1", 1)
    task_id = created["task_id"]

    async with httpx.AsyncClient(base_url=picking.url) as http:
        [listed] = (await http.get("/warehouses/WH-LON/tasks")).json()
        assert (listed["task_id"], listed["status"]) == (task_id, "released")
        assert (await http.get("/warehouses/WH-BER/tasks")).json() == []

        async def scan(confirmation_id: str, **body: Any) -> httpx.Response:
            body = {"picker_id": "ada", "confirmation_id": confirmation_id, **body}
            return await http.post(f"/tasks/{task_id}/scans", json=body)

        mispicks = {
            "sku_not_on_task": {"sku": "CAP-RED", "location": "A-03-05", "quantity": 1},
            "wrong_location": {"sku": "MUG-BLUE", "location": "A-01-02", "quantity": 1},
            "too_many_units": {"sku": "MUG-BLUE", "location": "H-04-02", "quantity": 3},
        }
        for code, body in mispicks.items():
            response = await scan(f"bad-{code}", **body)
            assert response.status_code == 422, response.text
            receipt = response.json()
            assert (receipt["accepted"], receipt["error"]["code"]) == (False, code)
            assert receipt["error"]["message"]
        task = (await http.get(f"/tasks/{task_id}")).json()
        assert task["status"] == "released"  # the mis-picks changed nothing
        assert [(i["picked"], i["status"]) for i in task["items"]] == [(0, "open"), (0, "open")]

        good = {"sku": "MUG-BLUE", "location": "H-04-02", "quantity": 2}
        accepted = await scan("scan-1", **good)
        assert accepted.status_code == 200, accepted.text
        receipt = accepted.json()
        assert (receipt["line_id"], receipt["picked"], receipt["line_status"]) == ("1", 2, "picked")
        retried = await scan("scan-1", **good)  # the device did not hear the answer
        assert retried.status_code == 200
        assert {**retried.json(), "replayed": False} == receipt
        reused = await scan("scan-1", **{**good, "quantity": 1})
        assert (reused.status_code, reused.json()["error"]["code"]) == (
            409,
            "confirmation_id_reused",
        )
        again = await scan("scan-2", **good)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "item_already_done")

        # one T-shirt on the shelf, then none: the line ends short
        partial = await scan("scan-3", sku="TEE-M", location="A-01-02", quantity=1)
        assert (partial.status_code, partial.json()["remaining"]) == (200, 2)
        short = await http.post(
            f"/tasks/{task_id}/short",
            json={"sku": "TEE-M", "picker_id": "ada", "confirmation_id": "short-1"},
        )
        assert short.status_code == 200, short.text
        assert (short.json()["line_status"], short.json()["task_status"]) == ("short", "completed")
        late = await scan("scan-4", sku="TEE-M", location="A-01-02", quantity=1)
        assert (late.status_code, late.json()["error"]["code"]) == (409, "task_completed")
        unknown = await http.post(
            "/tasks/no-such-task/scans",
            json={"picker_id": "ada", "confirmation_id": "x", **good},
        )
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "task_not_found")
        # PostgreSQL holds neither a NUL nor more than an integer: refused, never a 500
        for bad in ({"picker_id": "a\x00da"}, {"quantity": 99_999_999_999}):
            refused = await scan("scan-bad", **{**good, **bad})
            assert refused.status_code == 422, refused.text
        refused = await http.post(
            f"/tasks/{task_id}/short",
            json={"sku": "TEE-M", "picker_id": "ada", "confirmation_id": "s\x00", "found": 0},
        )
        assert refused.status_code == 422, refused.text

    [picked] = await wait_for(stack, "picking.item_picked.v1", 1)
    assert (picked["item"]["line_id"], picked["picker_id"]) == ("1", "ada")
    [shorted] = await wait_for(stack, "picking.short_picked.v1", 1)
    assert (shorted["item"]["line_id"], shorted["item"]["quantity"], shorted["picked"]) == (
        "2",
        3,
        1,
    )
    [completed] = await wait_for(stack, "picking.completed.v1", 1)
    assert counts(completed) == [("1", "MUG-BLUE", 2), ("2", "TEE-M", 1)]
    assert completed["short_line_ids"] == ["2"]
    rejected = await stack.query(
        f"SELECT code FROM {S}.confirmations WHERE NOT accepted ORDER BY received_at"
    )
    assert [r["code"] for r in rejected] == [
        *mispicks,
        "item_already_done",
        "task_completed",
    ]  # a scan for a task that does not exist was answered, not written
    metric = "conveyor_picking_confirmations_total"
    assert await picking.metric(metric, source="handheld", outcome="wrong_location") == 1
    assert await picking.metric(metric, source="handheld", outcome="replayed") == 1
    assert await picking.metric("conveyor_picking_lines_total", outcome="short") == 1


def confirm_pick(
    order_id: str, task_id: str, line: str, sku: str, location: str, picked: int, cid: str
) -> ConfirmPick:
    return ConfirmPick(
        order_id=order_id,
        task_id=task_id,
        line_id=line,
        sku=sku,
        location=location,
        quantity_picked=picked,
        picker_id="bo",
        confirmation_id=cid,
        scanned_at=NOW,
    )


async def test_confirm_pick_commands_pick_short_and_record_mispicks(stack: Stack) -> None:
    picking = await stack.start(
        SERVICE, picking_strategy="single_order", picking_simulator="false", **NO_POLLING
    )
    lines = [("1", "HOODIE-L-GREY", "WH-BER", 2), ("2", "POSTER-A2", "WH-BER", 1)]
    await publish(stack, confirmed("ord-k"), reserved("ord-k", lines))
    [created] = await wait_for(stack, "picking.task_created.v1", 1)
    task = created["task_id"]
    assert items(created) == [
        ("1", "HOODIE-L-GREY", 2, "T-11-01"),
        ("2", "POSTER-A2", 1, "W-21-03"),
    ]

    await publish(
        stack,
        confirm_pick("ord-k", task, "1", "HOODIE-L-GREY", "W-21-03", 2, "c-wrong-bin"),
        confirm_pick("ord-k", task, "1", "HOODIE-L-GREY", "T-11-01", 1, "c-hoodie"),  # 1 of 2
        confirm_pick("ord-k", task, "2", "POSTER-A2", "W-21-03", 1, "c-poster"),
    )
    await publish(  # the handheld retries with a new event id: picked once
        stack, confirm_pick("ord-k", task, "2", "POSTER-A2", "W-21-03", 1, "c-poster")
    )
    [completed] = await wait_for(stack, "picking.completed.v1", 1)
    assert counts(completed) == [("1", "HOODIE-L-GREY", 1), ("2", "POSTER-A2", 1)]
    assert completed["short_line_ids"] == ["1"]
    [shorted] = await events(stack, "picking.short_picked.v1")
    assert (shorted["item"]["sku"], shorted["picked"], shorted["picker_id"]) == (
        "HOODIE-L-GREY",
        1,
        "bo",
    )
    [picked] = await events(stack, "picking.item_picked.v1")
    assert picked["item"]["sku"] == "POSTER-A2"

    await settled(stack, picking, consumed=6)
    rows = await stack.query(
        f"""SELECT confirmation_id, accepted, code, source FROM {S}.confirmations
            ORDER BY received_at"""
    )
    assert [tuple(r) for r in rows] == [
        ("c-wrong-bin", False, "wrong_location", "command"),
        ("c-hoodie", True, None, "command"),
        ("c-poster", True, None, "command"),
    ]
    assert await picking.metric("conveyor_dead_letters_total") == 0
    assert len(await events(stack, "picking.completed.v1")) == 1


async def test_each_strategy_set_per_warehouse_yields_its_tasks(stack: Stack) -> None:
    picking = await stack.start(
        SERVICE,
        picking_strategies='{"WH-LON": "zone", "WH-BER": "batch", "WH-NJ": "wave"}',
        picking_batch_size="2",
        picking_batch_max_wait_s="2",
        picking_wave_size="2",
        picking_wave_window_s="3600",
        picking_simulator="false",
        **NO_POLLING,
    )
    zoned = [
        ("1", "MUG-BLUE", "WH-LON", 1),
        ("2", "TEE-M", "WH-LON", 1),
        ("3", "TEE-L-BLACK", "WH-LON", 2),
        ("4", "GIFT-CARD", "WH-LON", 1),  # no bin in the layout
    ]
    ids = ("b1", "b2", "b3", "w1", "w2", "w3")
    bins = {"b": ("TEE-M", "WH-BER"), "w": ("MUG-BLUE", "WH-NJ")}
    orders: list[Message] = [
        reserved("z1", zoned),
        *[reserved(o, [("1", *bins[o[0]], 1)]) for o in ids],
        confirmed("z1"),
        *[confirmed(o) for o in ids],
    ]
    await publish(stack, *orders)

    created = await wait_for(stack, "picking.task_created.v1", 8)  # 3 zones, 3 batch, 2 wave
    await settled(stack, picking, consumed=len(orders))
    by_order: dict[str, list[dict[str, Any]]] = {}
    for task in await events(stack, "picking.task_created.v1"):
        by_order.setdefault(task["order_id"], []).append(task)

    zones = {t["zone"]: items(t) for t in by_order["z1"]}
    assert zones == {
        "A": [("2", "TEE-M", 1, "A-01-02"), ("3", "TEE-L-BLACK", 2, "A-01-04")],
        "H": [("1", "MUG-BLUE", 1, "H-04-02")],
        "UNSLOTTED": [("4", "GIFT-CARD", 1, "LON-UNSLOTTED")],
    }
    assert {t["strategy"] for t in by_order["z1"]} == {"zone"}
    assert len({t["task_id"] for t in by_order["z1"]}) == 3

    # which orders share a trip depends on which partition the consumer reads first
    batches = trips_of(by_order, "b1", "b2", "b3")
    assert {t["strategy"] for b in ("b1", "b2", "b3") for t in by_order[b]} == {"batch"}
    assert sorted(len(orders) for orders in batches.values()) == [1, 2]  # full at 2 orders
    [alone] = [trip for trip, orders in batches.items() if len(orders) == 1]
    [late] = await stack.query(
        f"SELECT released_at >= closes_at AS by_time FROM {S}.trips WHERE trip_id = $1", alone
    )
    assert late["by_time"], "the third order's batch left after its max wait"

    waves = trips_of(by_order, "w1", "w2", "w3")
    [(wave, together)] = waves.items()  # the next wave is not full; its window is an hour
    assert len(together) == 2
    [waiting] = {"w1", "w2", "w3"} - set(together)
    held = await stack.query(f"SELECT status, trip_id FROM {S}.tasks WHERE order_id = $1", waiting)
    assert [r["status"] for r in held] == ["held"] and held[0]["trip_id"] != wave
    assert len(created) >= 8 and len(await events(stack, "picking.task_created.v1")) == 8


async def test_waves_leave_at_the_end_of_their_window_and_take_the_pick_time(
    stack: Stack,
) -> None:
    picking = await stack.start(
        SERVICE,
        picking_strategy="wave",
        picking_wave_window_s="1",
        picking_wave_size="0",
        picking_simulated_pick_s="0.5",
        **NO_POLLING,
    )
    await publish(
        stack,
        *[
            m
            for n in (1, 2, 3)
            for m in (confirmed(f"v{n}"), reserved(f"v{n}", [("1", "TEE-M", "WH-NJ", 1)]))
        ],
    )
    completed = await wait_for(stack, "picking.completed.v1", 3)
    await settled(stack, picking, consumed=6)
    created = await events(stack, "picking.task_created.v1")
    assert len(created) == 3 and {t["strategy"] for t in created} == {"wave"}
    trips = await stack.query(f"SELECT trip_id, opened_at, closes_at, released_at FROM {S}.trips")
    assert {t["trip_id"] for t in created} <= {r["trip_id"] for r in trips}
    for trip in trips:
        assert trip["released_at"] >= trip["closes_at"], "a wave leaves when its window ends"
        assert trip["closes_at"].timestamp() % 1 == 0, "windows are aligned to the clock"
    assert {c["task_id"] for c in completed} == {t["task_id"] for t in created}
    picking_took = await stack.query(
        f"""SELECT extract(epoch FROM c.completed_at - t.released_at) AS s
            FROM {S}.completions c JOIN {S}.tasks t USING (task_id)"""
    )
    assert all(r["s"] >= 0.5 for r in picking_took), "the simulated picker takes its time"


async def test_a_cancelled_order_gets_no_tasks(stack: Stack) -> None:
    picking = await stack.start(
        SERVICE,
        picking_strategy="batch",
        picking_batch_size="10",
        picking_batch_max_wait_s="3",
        picking_simulator="false",
        **NO_POLLING,
    )
    line = [("1", "TEE-M", "WH-BER", 1)]
    await publish(
        stack,
        reserved("x", line),
        reserved("y", line),
        reserved("z", line),
        confirmed("x"),
        confirmed("y"),
        cancelled("z"),  # cancelled before it was confirmed
        confirmed("z"),
        confirmed("u"),
        cancelled("u"),  # cancelled between its confirmation and its reservation
    )

    async def held() -> list[Any]:
        return await stack.query(
            f"SELECT 1 FROM {S}.tasks WHERE order_id = 'x' AND status = 'held'"
        )

    await eventually(held, what="x's task held in the open batch")
    await publish(stack, cancelled("x"), reserved("u", line))  # x: cancelled while held

    [released] = await wait_for(stack, "picking.task_created.v1", 1)
    await settled(stack, picking, consumed=11)
    assert released["order_id"] == "y" and released["trip_id"]
    assert len(await events(stack, "picking.task_created.v1")) == 1
    tasks = await stack.query(f"SELECT order_id, status FROM {S}.tasks ORDER BY order_id")
    assert [tuple(t) for t in tasks] == [("x", "cancelled"), ("y", "released")]
    assert await events(stack, "picking.task_cancelled.v1") == [], "x was never announced"

    # y: its task was released (announced); a cancellation withdraws it with an event
    await publish(stack, cancelled("y"))
    [withdrawn] = await wait_for(stack, "picking.task_cancelled.v1", 1)
    assert (withdrawn["order_id"], withdrawn["task_id"]) == ("y", released["task_id"])
    assert withdrawn["warehouse_id"] == "WH-BER"


def backorder_allocated(order_id: str, lines: list[Line], still: int = 0) -> BackorderAllocated:
    return BackorderAllocated(
        order_id=order_id,
        reservation_id=f"res-{order_id}",
        occurred_at=NOW,
        allocations=allocations(lines),
        still_backordered=(
            [BackorderedLine(line_id="9", sku="HOODIE-L-GREY", quantity=still)] if still else []
        ),
    )


async def test_backorder_allocations_become_tasks_once_the_order_is_confirmed(stack: Stack) -> None:
    picking = await stack.start(
        SERVICE, picking_strategy="single_order", picking_simulated_pick_s="0", **NO_POLLING
    )
    hoodies = [("2", "HOODIE-L-GREY", "WH-LON", 2)]
    await publish(
        stack,
        reserved("part", [("1", "MUG-BLUE", "WH-LON", 1)], backordered=[("2", "HOODIE-L-GREY", 2)]),
        reserved("all", [], backordered=[("2", "HOODIE-L-GREY", 2)]),
        backorder_allocated("all", hoodies),  # stock came before the order was confirmed
        confirmed("part", backordered_skus=["HOODIE-L-GREY"]),
    )
    [first] = await wait_for(stack, "picking.completed.v1", 1)
    assert counts(first) == [("1", "MUG-BLUE", 1)]

    await publish(stack, backorder_allocated("part", hoodies), backorder_allocated("part", hoodies))
    await publish(stack, confirmed("all", backordered_skus=["HOODIE-L-GREY"]))
    completed = await wait_for(stack, "picking.completed.v1", 3)
    await settled(stack, picking, consumed=7)
    created = await events(stack, "picking.task_created.v1")
    assert sorted((t["order_id"], items(t)[0][1]) for t in created) == [
        ("all", "HOODIE-L-GREY"),
        ("part", "HOODIE-L-GREY"),
        ("part", "MUG-BLUE"),
    ]
    assert len({t["task_id"] for t in created}) == 3
    # the round each task was allocated in: None for the reservation's
    rounds = {(t["order_id"], items(t)[0][1]): t["backorder_round"] for t in created}
    assert rounds == {
        ("all", "HOODIE-L-GREY"): backorder_allocated("all", hoodies).round_id,
        ("part", "HOODIE-L-GREY"): backorder_allocated("part", hoodies).round_id,
        ("part", "MUG-BLUE"): None,
    }
    assert sorted(counts(c)[0] for c in completed) == [
        ("1", "MUG-BLUE", 1),
        ("2", "HOODIE-L-GREY", 2),
        ("2", "HOODIE-L-GREY", 2),
    ]


async def test_tasks_held_in_a_trip_leave_naming_their_backorder_round(stack: Stack) -> None:
    """Tasks released with their trip are read back from the table: each still names the
    round it was allocated in."""
    picking = await stack.start(
        SERVICE,
        picking_strategy="batch",
        picking_batch_size="2",
        picking_batch_max_wait_s="3600",
        picking_simulator="false",
        **NO_POLLING,
    )
    hoodie = [("2", "HOODIE-L-GREY", "WH-BER", 1)]
    later = backorder_allocated("h", hoodie)
    await publish(
        stack,
        reserved("h", [("1", "TEE-M", "WH-BER", 1)], backordered=[("2", "HOODIE-L-GREY", 1)]),
        later,
        confirmed("h", backordered_skus=["HOODIE-L-GREY"]),
    )

    async def both_held() -> bool:
        rows = await stack.query(f"SELECT 1 FROM {S}.tasks WHERE status = 'held'")
        return len(rows) == 2

    await eventually(both_held, what="h's two rounds held in one batch")
    await publish(stack, reserved("k", [("1", "MUG-BLUE", "WH-BER", 1)]), confirmed("k"))
    await wait_for(stack, "picking.task_created.v1", 3)
    await settled(stack, picking, consumed=5)
    created = await events(stack, "picking.task_created.v1")
    assert len({t["trip_id"] for t in created}) == 1  # one batch of two orders
    rounds = sorted((t["order_id"], items(t)[0][1], t["backorder_round"] or "") for t in created)
    assert rounds == [
        ("h", "HOODIE-L-GREY", later.round_id),
        ("h", "TEE-M", ""),
        ("k", "MUG-BLUE", ""),
    ]


ORDERS = 2000


async def test_thousands_of_orders_survive_a_sigkill_each_picked_once(stack: Stack) -> None:
    """Orders are waiting when the service starts; it is SIGKILLed while the simulated
    picker works, restarted, and every task is still created and completed exactly once."""
    lines = [("1", "MUG-BLUE", "WH-LON", 1), ("2", "TEE-M", "WH-LON", 2)]
    ids = [f"vol-{n}" for n in range(ORDERS)]
    await publish(stack, *[confirmed(o) for o in ids])
    await publish(stack, *[reserved(o, lines) for o in ids])
    settings = {"picking_strategy": "single_order", "picking_simulated_pick_s": "0", **NO_POLLING}
    first = await stack.start(SERVICE, **settings)

    async def some_completed() -> bool:
        rows = await stack.query(f"SELECT count(*) AS n FROM {S}.completions")
        return rows[0]["n"] >= ORDERS // 10

    await eventually(some_completed, what="picking under way")
    first.kill()
    await stack.start(SERVICE, **settings)

    async def all_completed() -> bool:
        rows = await stack.query(f"SELECT count(*) AS n FROM {S}.completions")
        return rows[0]["n"] == ORDERS

    await eventually(all_completed, timeout_s=120, what=f"{ORDERS} completions")
    completed = await wait_for(stack, "picking.completed.v1", ORDERS)
    assert {c["order_id"] for c in completed} == set(ids)
    assert all(counts(c) == [("1", "MUG-BLUE", 1), ("2", "TEE-M", 2)] for c in completed)
    # at-least-once publishing: a row published before the kill but not marked sent goes
    # out again with the same ce_id (consumers' inboxes apply it once); a second *effect*
    # would carry a new ce_id
    records = await stack.read_topic("picking.events")
    effects = {(header(r, "ce_type"), header(r, "ce_id")) for r in records}
    by_type = {t: sum(1 for e in effects if e[0] == t) for t, _ in effects}
    assert by_type == {
        "picking.task_created.v1": ORDERS,
        "picking.item_picked.v1": 2 * ORDERS,
        "picking.completed.v1": ORDERS,
    }


# --- runs of confirmations and allocations applied at once end as one by one ---

RUN_SETTINGS = {
    "picking_strategies": '{"WH-LON": "zone", "WH-BER": "batch", "WH-NJ": "wave"}',
    "picking_batch_size": "2",
    "picking_batch_max_wait_s": "3600",
    "picking_wave_size": "2",
    # a window that cannot end during the test: waves leave here only when full
    "picking_wave_window_s": "1000000000",
    "picking_simulator": "false",
    **NO_POLLING,
}


def run_phases() -> list[tuple[str, list[Message]]]:
    """Three polls: confirmations (one of a cancelled order), then allocations — zone
    tasks, batches that fill and open the next, a backorder round of an order already in
    a trip, a wave, repeats, rounds that wait — then the confirmations they waited for,
    one joining a trip opened by the previous poll."""
    lon, ber, nj = "WH-LON", "WH-BER", "WH-NJ"
    later = InventoryReserved(  # named so that its round sorts before the backorder round,
        # as it is received first: one by one, each record is a transaction of its own
        order_id="w-later",
        reservation_id="a-res-w-later",
        occurred_at=NOW,
        allocations=allocations([("1", "MUG-BLUE", lon, 1)]),
        backordered=[BackorderedLine(line_id="2", sku="TEE-M", quantity=1)],
    )
    return [
        (
            "order.events",
            [
                *[confirmed(o) for o in ("c-zone", "c-batch1", "c-batch2", "c-batch3")],
                *[confirmed(o) for o in ("c-wave1", "c-wave2", "c-split")],
                cancelled("c-cancel"),  # ends a run: the next confirmation starts one
                confirmed("c-cancel"),
                confirmed("c-twice"),
                confirmed("c-held"),
            ],
        ),
        (
            "inventory.events",
            [
                reserved(
                    "c-zone",
                    [("1", "MUG-BLUE", lon, 1), ("2", "TEE-M", lon, 1), ("3", "GIFT-CARD", lon, 1)],
                ),
                reserved("c-batch1", [("1", "TEE-M", ber, 1)]),
                # its Berlin task fills the batch, which leaves before its London task
                reserved("c-split", [("1", "CAP-RED", lon, 1), ("2", "MUG-BLUE", ber, 1)]),
                reserved("c-batch2", [("1", "TEE-M", ber, 1)], [("2", "HOODIE-L-GREY", 1)]),
                backorder_allocated("c-batch2", [("2", "HOODIE-L-GREY", ber, 1)]),  # same place
                reserved("c-wave1", [("1", "MUG-BLUE", nj, 1)]),
                reserved("c-wave2", [("1", "MUG-BLUE", nj, 2)]),
                reserved("c-cancel", [("1", "MUG-BLUE", lon, 1)]),
                later,
                backorder_allocated("w-later", [("2", "TEE-M", lon, 1)]),
                reserved("c-batch2", [("1", "TEE-M", ber, 1)], [("2", "HOODIE-L-GREY", 1)]),
                reserved("c-empty", [], [("1", "MUG-BLUE", 1)]),
                reserved("c-twice", [("1", "MUG-BLUE", lon, 1)]),
                backorder_allocated("c-batch3", [("1", "TEE-M", ber, 1)]),
                reserved("c-held", [("1", "TEE-M", ber, 1)]),
                reserved("w-ber", [("1", "POSTER-A2", ber, 1)]),
            ],
        ),
        (
            "order.events",
            [
                confirmed("w-later"),
                confirmed("c-twice"),
                confirmed("w-ber"),
                cancelled("c-zone"),
            ],
        ),
    ]


async def test_runs_of_confirmations_and_allocations_end_as_one_by_one(stack: Stack) -> None:
    """The same records to two picking services: one takes each poll's records in one
    transaction (runs of several records), the other one record per poll. Same rows,
    same events in the same order, each caused by the same record."""
    one_by_one_db = stack.sibling_database("picking_one_by_one")
    names: dict[str, str] = {}
    for phase, (topic, messages) in enumerate(run_phases(), start=1):
        # published before the services start: the first poll hands over all of them
        ids = await publish_in_one_partition(stack, topic, messages)
        names |= {event_id: f"{phase}.{n}" for n, event_id in enumerate(ids)}
        batched, one_by_one = await stack.start_with_one_by_one_twin(
            SERVICE, one_by_one_db, **RUN_SETTINGS
        )
        for process in (batched, one_by_one):
            await stack.settled(process, len(messages))
        await applied_in_one_poll(batched, topic)
        for process in (batched, one_by_one):
            process.stop()

    state = await picking_state(stack.database_url)
    assert state == await picking_state(one_by_one_db)
    assert run_summary(state["outbox"], names) == [
        ("2.0", ["c-zone", "c-zone", "c-zone"]),
        ("trip", ["c-batch1", "c-split"]),
        ("2.2", ["c-split"]),
        ("trip", ["c-wave1", "c-wave2"]),
        ("2.12", ["c-twice"]),
        ("trip", ["c-batch2", "c-batch2", "c-batch3"]),
        ("3.0", ["w-later", "w-later"]),
        ("trip", ["c-held", "w-ber"]),
        ("3.3", ["c-zone", "c-zone", "c-zone"]),  # its released zone tasks withdrawn
    ]
    later = [p for p, _ in state["outbox"] if p["order_id"] == "w-later"]
    assert [p["items"][0]["sku"] for p in later] == ["MUG-BLUE", "TEE-M"]  # received order
    # every trip left full; c-batch2's backorder round took no second place in its trip
    assert sorted((t[1], t[2], t[3], t[4]) for t in state["trips"]) == [
        *[("WH-BER", "batch", 2, True)] * 3,
        ("WH-NJ", "wave", 2, True),
    ]
    statuses = {(t[1], t[2]): t[-1] for t in state["tasks"]}
    assert statuses[("c-zone", "WH-LON")] == "cancelled"
    assert statuses[("c-held", "WH-BER")] == "released"
    assert "c-empty" not in {o[0] for o in state["orders"]}
    assert [r[:2] for r in state["rounds"] if not r[-1]] == [("c-cancel", "res-c-cancel")]


async def test_a_poll_of_both_topics_plans_each_order_once_in_one_transaction(
    stack: Stack,
) -> None:
    """Confirmations and reservations of the same orders in one poll: whichever topic the
    poll lists first, the other's records see them in the same run, and each order is
    planned once, in the orders' order (a batch filling on the way)."""
    orders = ["m-1", "m-2", "m-3", "m-4"]
    lines = {
        "m-1": [("1", "MUG-BLUE", "WH-LON", 1), ("2", "TEE-M", "WH-LON", 1)],
        "m-2": [("1", "CAP-RED", "WH-LON", 1)],
        "m-3": [("1", "TEE-M", "WH-BER", 1)],
        "m-4": [("1", "TEE-M", "WH-BER", 2)],
    }
    confirmations = await publish_in_one_partition(
        stack, "order.events", [confirmed(o) for o in orders]
    )
    reservations = await publish_in_one_partition(
        stack, "inventory.events", [reserved(o, lines[o]) for o in orders]
    )
    picking = await stack.start(SERVICE, **RUN_SETTINGS)
    await stack.settled(picking, 2 * len(orders))
    for topic in ("order.events", "inventory.events"):
        await applied_in_one_poll(picking, topic)

    state = await picking_state(stack.database_url)
    # planned by whichever record of an order came second: all of one topic
    second = confirmations if state["outbox"][0][1] in confirmations else reservations
    assert run_summary(state["outbox"], {e: f"{n}" for n, e in enumerate(second)}) == [
        ("0", ["m-1", "m-1"]),  # two zones
        ("1", ["m-2"]),
        ("trip", ["m-3", "m-4"]),  # a batch of two: it left with m-4
    ]
    assert [r[-1] for r in state["rounds"]] == [True] * len(orders)  # each planned once
    # one poll, one transaction: the records were applied as runs
    assert len(await stack.query(f"SELECT DISTINCT xmin::text FROM {S}.tasks")) == 1


async def publish_in_one_partition(stack: Stack, topic: str, messages: list[Message]) -> list[str]:
    """Records of several orders under one key: one partition, so they reach the
    service in this order (by order id they would spread over the partitions)."""
    envelopes = [
        Envelope(type=m.TYPE, source="test/upstream", data=m.to_json(), subject=m.subject)
        for m in messages
    ]
    await stack.publish(topic, [(b"one-run", e.data, to_headers(e)) for e in envelopes])
    return [e.id for e in envelopes]


async def applied_in_one_poll(process: ServiceProcess, topic: str) -> None:
    """One poll brought every record of ``topic``, and it was never redone record by
    record (which would hide a broken run behind the one-by-one fallback)."""
    assert await process.metric("conveyor_batch_size_count", topic=topic) == 1
    assert await process.metric("conveyor_retries_total", kind="handler") == 0


def run_summary(
    outbox: list[tuple[dict[str, Any], str | None]], names: dict[str, str]
) -> list[tuple[str, list[str]]]:
    """The events as steps: the record that caused them (``trip``: a trip left) and the
    orders of their tasks, in the order emitted (a trip's sorted: its tasks leave in
    task id order, which is checked here)."""
    steps: list[tuple[str, str | None, list[dict[str, Any]]]] = []
    for payload, cause in outbox:
        step = (names[cause], None) if cause else ("trip", payload["trip_id"])
        if not steps or steps[-1][:2] != step:
            steps.append((*step, []))
        steps[-1][2].append(payload)
    for name, _, tasks in steps:
        if name == "trip":
            ids = [t["task_id"] for t in tasks]
            assert ids == sorted(ids), "a trip's tasks leave in task id order"
    return [
        (name, sorted(orders) if name == "trip" else orders)
        for name, _, tasks in steps
        if (orders := [t["order_id"] for t in tasks])
    ]


async def picking_state(database_url: str) -> dict[str, list[Any]]:
    """Every table the records write (without the times, which differ), and the outbox
    in order: each event without its time, and the id of the record that caused it."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": S})
    try:
        state = {
            name: [tuple(r) for r in await conn.fetch(sql)]
            for name, sql in {
                "orders": """SELECT order_id, confirmed_at IS NOT NULL, cancelled_at IS NOT NULL,
                                    reservation_id, backordered_skus
                             FROM orders ORDER BY order_id""",
                "rounds": """SELECT order_id, round_id, reservation_id, allocations::text,
                                    planned_at IS NOT NULL
                             FROM allocation_rounds ORDER BY order_id, round_id""",
                "trips": """SELECT trip_id, warehouse_id, kind, order_count,
                                   released_at IS NOT NULL
                            FROM trips ORDER BY trip_id""",
                "tasks": """SELECT task_id, order_id, warehouse_id, zone, round_id,
                                   reservation_id, strategy, trip_id,
                                   released_at IS NOT NULL, status
                            FROM tasks ORDER BY task_id""",
                "items": """SELECT task_id, line_id, sku, location, quantity, picked, short
                            FROM task_items ORDER BY task_id, line_id""",
            }.items()
        }
        outbox = await conn.fetch(
            "SELECT header_names, header_values, payload FROM outbox ORDER BY id"
        )
    finally:
        await conn.close()
    state["outbox"] = [
        (
            {k: v for k, v in json.loads(r["payload"]).items() if k != "occurred_at"},
            next(
                (
                    v.decode()
                    for n, v in zip(r["header_names"], r["header_values"], strict=True)
                    if n == "causation_id"
                ),
                None,
            ),
        )
        for r in outbox
    ]
    return state
