"""Short picks on a real broker and PostgreSQL: units a picker did not find
(``picking.short_picked.v1``) are written off, held again where stock is
(``inventory.backorder_allocated.v1`` with ``short_pick_task_id``), backordered and later
served by a receipt, or — a SKU that may not wait — not supplied; once per task and line;
and the dispatches that follow commit the right units and status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.inventory.seed import seed_database
from shared.schemas.events.fulfillment import PickItem, ShortPicked
from shared.schemas.events.inventory import ReceiveStock
from tests.integration.harness import Stack, data, eventually, header
from tests.integration.test_inventory import (
    TWO_WAREHOUSES,
    S,
    allocations,
    consumed,
    dispatched,
    events,
    placed,
    seed_file,
    stock_rows,
    wait_for_events,
)

ALLOCATED = "inventory.backorder_allocated.v1"


def short_picked(
    order_id: str, task_id: str, line: tuple[str, str, int], picked: int, warehouse_id: str
) -> ShortPicked:
    line_id, sku, expected = line
    return ShortPicked(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        task_id=task_id,
        warehouse_id=warehouse_id,
        item=PickItem(line_id=line_id, sku=sku, quantity=expected, location="A-01-1"),
        picked=picked,
        picker_id="picker-1",
    )


async def status_of(stack: Stack, order_id: str) -> str:
    rows = await stack.query(f"SELECT status FROM {S}.reservations WHERE order_id = $1", order_id)
    return str(rows[0]["status"])


async def held(stack: Stack, order_id: str) -> list[tuple[str, str, str, int, int]]:
    rows = await stack.query(
        f"""SELECT a.line_id, a.sku, a.warehouse_id, a.quantity, a.committed
            FROM {S}.allocations a JOIN {S}.reservations r USING (reservation_id)
            WHERE r.order_id = $1 ORDER BY a.line_id, a.warehouse_id""",
        order_id,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def levels_of(stack: Stack, sku: str, warehouse_id: str) -> list[tuple[int, int, int]]:
    return [
        (e["version"], e["on_hand"], e["reserved"])
        for e in await events(stack, "stock.events", "stock.level_changed.v1")
        if (e["sku"], e["warehouse_id"]) == (sku, warehouse_id)
    ]


async def committed_event(stack: Stack, shipment_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        for e in await events(stack, "inventory.events", "inventory.committed.v1"):
            if e["shipment_id"] == shipment_id:
                return e
        return None

    return await eventually(found, what=f"{shipment_id} committed")


async def test_missing_units_are_written_off_and_held_again_once(
    stack: Stack, tmp_path: Path
) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "MUG"}, {"sku": "LAMP"}],
        stock=[
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 5},
            {"sku": "MUG", "warehouse_id": "WH-B", "on_hand": 5},
            {"sku": "LAMP", "warehouse_id": "WH-A", "on_hand": 10},
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    await stack.publish_messages("order.events", [placed("sp-1", [("MUG", 4), ("LAMP", 2)])])
    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    assert allocations(reserved) == [("1", "MUG", "WH-A", 4), ("2", "LAMP", "WH-A", 2)]

    # task T-1 in London: one of four mugs found, neither lamp
    mugs = short_picked("sp-1", "T-1", ("1", "MUG", 4), picked=1, warehouse_id="WH-A")
    lamps = short_picked("sp-1", "T-1", ("2", "LAMP", 2), picked=0, warehouse_id="WH-A")
    [mugs_id, _] = await stack.publish_messages("picking.events", [mugs, lamps])
    again = await wait_for_events(stack, "inventory.events", ALLOCATED, 2)
    by_line = {e["allocations"][0]["line_id"]: e for e in again}
    # London has one mug left to promise, Berlin all three: Berlin holds them
    assert allocations(by_line["1"]) == [("1", "MUG", "WH-B", 3)]
    # London still has lamps to promise: it holds them again
    assert allocations(by_line["2"]) == [("2", "LAMP", "WH-A", 2)]
    for line, e in by_line.items():
        assert (e["short_pick_task_id"], e["short_pick_line_id"]) == ("T-1", line)
        assert e["reservation_id"] == reserved["reservation_id"]
        assert e["still_backordered"] == []

    await consumed(stack, inventory, "picking.events", 2)
    # the three missing mugs left London's books: on hand and reserved both down by them
    assert await stock_rows(stack, "MUG") == {
        "WH-A": {"on_hand": 2, "reserved": 1, "safety_stock": 0},
        "WH-B": {"on_hand": 5, "reserved": 3, "safety_stock": 0},
    }
    assert (await stock_rows(stack, "LAMP"))["WH-A"] == {
        "on_hand": 8,
        "reserved": 2,
        "safety_stock": 0,
    }
    assert await held(stack, "sp-1") == [
        ("1", "MUG", "WH-A", 1, 0),
        ("1", "MUG", "WH-B", 3, 0),
        ("2", "LAMP", "WH-A", 2, 0),
    ]
    assert await levels_of(stack, "MUG", "WH-A") == [(1, 5, 0), (2, 5, 4), (3, 2, 1)]
    assert await levels_of(stack, "LAMP", "WH-A") == [(1, 10, 0), (2, 10, 2), (3, 8, 0), (4, 8, 2)]

    # the same short pick again: redelivered (same ce_id) and re-emitted (a new one)
    await stack.publish_messages("picking.events", [mugs], id=mugs_id)
    await stack.publish_messages("picking.events", [mugs])
    await consumed(stack, inventory, "picking.events", 4)
    assert len(await events(stack, "inventory.events", ALLOCATED)) == 2
    assert (await stock_rows(stack, "MUG"))["WH-A"] == {
        "on_hand": 2,
        "reserved": 1,
        "safety_stock": 0,
    }
    assert len(await levels_of(stack, "MUG", "WH-A")) == 3
    recorded = await stack.query(
        f"""SELECT line_id, written_off, reallocated, backordered, unfillable
            FROM {S}.short_picks ORDER BY line_id"""
    )
    assert [tuple(r) for r in recorded] == [("1", 3, 3, 0, 0), ("2", 2, 2, 0, 0)]

    # the first parcel carries the one mug found: it commits that one, nothing more
    await stack.publish_messages(
        "shipping.events", [dispatched("sp-1", "SHP-1", "WH-A", [("1", "MUG", 1)])]
    )
    assert allocations(await committed_event(stack, "SHP-1")) == [("1", "MUG", "WH-A", 1)]
    assert await status_of(stack, "sp-1") == "held"  # the re-allocated units have not shipped
    await stack.publish_messages(
        "shipping.events", [dispatched("sp-1", "SHP-2", "WH-A", [("2", "LAMP", 2)])]
    )
    assert allocations(await committed_event(stack, "SHP-2")) == [("2", "LAMP", "WH-A", 2)]
    assert await status_of(stack, "sp-1") == "held"  # Berlin's three still outstanding
    await stack.publish_messages(
        "shipping.events", [dispatched("sp-1", "SHP-3", "WH-B", [("1", "MUG", 3)])]
    )
    assert allocations(await committed_event(stack, "SHP-3")) == [("1", "MUG", "WH-B", 3)]
    await consumed(stack, inventory, "shipping.events", 3)
    assert await status_of(stack, "sp-1") == "committed"
    assert await stock_rows(stack, "MUG") == {
        "WH-A": {"on_hand": 1, "reserved": 0, "safety_stock": 0},
        "WH-B": {"on_hand": 2, "reserved": 0, "safety_stock": 0},
    }
    assert (await stock_rows(stack, "LAMP"))["WH-A"]["reserved"] == 0
    assert await inventory.metric("conveyor_dead_letters_total") == 0


async def test_missing_units_nowhere_in_stock_wait_for_a_receipt(
    stack: Stack, tmp_path: Path
) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "HOODIE", "backorderable": True}],
        stock=[{"sku": "HOODIE", "warehouse_id": "WH-A", "on_hand": 2}],
        incoming=[
            {
                "reference": "PO-7",
                "sku": "HOODIE",
                "warehouse_id": "WH-B",
                "quantity": 5,
                "expected_in_days": 5,
            }
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    today = datetime.now(UTC).date()
    await stack.publish_messages("order.events", [placed("sp-bo", [("HOODIE", 2)])])
    [reserved] = await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 1)
    assert allocations(reserved) == [("1", "HOODIE", "WH-A", 2)]

    await stack.publish_messages(
        "picking.events",
        [short_picked("sp-bo", "T-2", ("1", "HOODIE", 2), picked=0, warehouse_id="WH-A")],
    )
    [waiting] = await wait_for_events(stack, "inventory.events", ALLOCATED, 1)
    assert (waiting["short_pick_task_id"], waiting["short_pick_line_id"]) == ("T-2", "1")
    assert waiting["allocations"] == []  # nothing held: the order waits for these
    assert waiting["still_backordered"] == [
        {
            "line_id": "1",
            "sku": "HOODIE",
            "quantity": 2,
            "expected_restock_date": (today + timedelta(days=5)).isoformat(),
        }
    ]
    assert (await stock_rows(stack, "HOODIE"))["WH-A"] == {
        "on_hand": 0,
        "reserved": 0,
        "safety_stock": 0,
    }
    assert await held(stack, "sp-bo") == []
    assert await status_of(stack, "sp-bo") == "held"

    # the purchase order arrives in Berlin: the backorder is served first
    receipt = ReceiveStock(
        sku="HOODIE",
        warehouse_id="WH-B",
        quantity=5,
        receipt_id="R-7",
        reference="PO-7",
        received_by="test",
    )
    await stack.publish_messages("inventory.commands", [receipt])
    [_, served] = await wait_for_events(stack, "inventory.events", ALLOCATED, 2)
    assert served["short_pick_task_id"] is None
    assert allocations(served) == [("1", "HOODIE", "WH-B", 2)]
    assert served["still_backordered"] == []
    assert (await stock_rows(stack, "HOODIE"))["WH-B"] == {
        "on_hand": 5,
        "reserved": 2,
        "safety_stock": 0,
    }

    await stack.publish_messages(
        "shipping.events", [dispatched("sp-bo", "SHP-9", "WH-B", [("1", "HOODIE", 2)])]
    )
    assert allocations(await committed_event(stack, "SHP-9")) == [("1", "HOODIE", "WH-B", 2)]
    await consumed(stack, inventory, "shipping.events", 1)
    assert await status_of(stack, "sp-bo") == "committed"
    assert await inventory.metric("conveyor_dead_letters_total") == 0


async def test_missing_units_that_may_not_wait_are_only_written_off(
    stack: Stack, tmp_path: Path
) -> None:
    seed = seed_file(
        tmp_path,
        warehouses=TWO_WAREHOUSES,
        skus=[{"sku": "MUG"}, {"sku": "LAMP", "backorderable": False}],
        stock=[
            {"sku": "MUG", "warehouse_id": "WH-A", "on_hand": 5},
            {"sku": "LAMP", "warehouse_id": "WH-A", "on_hand": 2},
        ],
    )
    await seed_database(stack.database_url, seed)
    inventory = await stack.start("inventory")
    await stack.publish_messages(
        "order.events",
        [placed("sp-x", [("MUG", 1), ("LAMP", 1)]), placed("sp-y", [("MUG", 2), ("LAMP", 1)])],
    )
    await wait_for_events(stack, "inventory.events", "inventory.reserved.v1", 2)

    # sp-x: its lamp is not on the shelf, and no lamp is left to promise anywhere
    await stack.publish_messages(
        "picking.events",
        [short_picked("sp-x", "T-x", ("2", "LAMP", 1), picked=0, warehouse_id="WH-A")],
    )
    # answered all the same, with nothing held or waiting: the line ships short
    [answer] = await wait_for_events(stack, "inventory.events", ALLOCATED, 1)
    assert (answer["short_pick_task_id"], answer["short_pick_line_id"]) == ("T-x", "2")
    assert answer["allocations"] == [] and answer["still_backordered"] == []
    await consumed(stack, inventory, "picking.events", 1)
    assert (await stock_rows(stack, "LAMP"))["WH-A"] == {
        "on_hand": 1,
        "reserved": 1,
        "safety_stock": 0,
    }
    assert await held(stack, "sp-x") == [("1", "MUG", "WH-A", 1, 0)]
    assert await stack.query(f"SELECT 1 FROM {S}.backorders") == []
    await stack.publish_messages(
        "shipping.events", [dispatched("sp-x", "SHP-x", "WH-A", [("1", "MUG", 1)])]
    )
    assert allocations(await committed_event(stack, "SHP-x")) == [("1", "MUG", "WH-A", 1)]
    await consumed(stack, inventory, "shipping.events", 1)
    assert await status_of(stack, "sp-x") == "committed"  # what was left of it shipped

    # sp-y: its parcel (the mugs) is dispatched before inventory hears of the short pick;
    # the short pick then leaves nothing outstanding: the reservation is done
    await stack.publish_messages(
        "shipping.events", [dispatched("sp-y", "SHP-y", "WH-A", [("1", "MUG", 2)])]
    )
    await committed_event(stack, "SHP-y")
    await consumed(stack, inventory, "shipping.events", 2)
    assert await status_of(stack, "sp-y") == "held"
    await stack.publish_messages(
        "picking.events",
        [short_picked("sp-y", "T-y", ("2", "LAMP", 1), picked=0, warehouse_id="WH-A")],
    )
    await consumed(stack, inventory, "picking.events", 2)
    assert await status_of(stack, "sp-y") == "committed"
    answers = await events(stack, "inventory.events", ALLOCATED)
    # (on two partitions: read back in no particular order)
    assert sorted((a["order_id"], a["allocations"]) for a in answers) == [
        ("sp-x", []),
        ("sp-y", []),
    ]
    assert await stock_rows(stack, "LAMP") == {
        "WH-A": {"on_hand": 0, "reserved": 0, "safety_stock": 0}
    }
    assert await stock_rows(stack, "MUG") == {
        "WH-A": {"on_hand": 2, "reserved": 0, "safety_stock": 0}
    }
    recorded = await stack.query(
        f"SELECT order_id, written_off, unfillable FROM {S}.short_picks ORDER BY order_id"
    )
    assert [tuple(r) for r in recorded] == [("sp-x", 1, 1), ("sp-y", 1, 1)]

    # a short pick for an order inventory never saw: for a human
    await stack.publish_messages(
        "picking.events",
        [short_picked("sp-ghost", "T-g", ("1", "MUG", 1), picked=0, warehouse_id="WH-A")],
    )
    [dead] = await stack.wait_for_records("inventory.dlq", 1)
    assert data(dead)["order_id"] == "sp-ghost"
    assert "ReservationNotFound" in (header(dead, "dlq_detail") or "")
