"""The packing service on a real broker and PostgreSQL: one task packed into the expected
box, zone tasks packed only once all completed (whatever the order of their events),
redeliveries packed once, short lines left out, nothing picked → nothing packed, a
SIGKILL between the database commit and the offset commit, a backorder round at a
warehouse already packed packed on its own, rows from before rounds still valid, and a
run of reports applied at once ending as the same reports one by one."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.fulfillment.packing.domain import package_id_for, packing_id_for
from shared.runtime.db import migrate
from shared.schemas import Envelope, Message, to_headers
from shared.schemas.events.fulfillment import (
    ItemCount,
    ItemPicked,
    PickingCompleted,
    PickItem,
    PickTaskCreated,
    ShortPicked,
)
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

S = "packing_service"
ROUND = "backorder:acc8fed87c102bac50bc"  # as BackorderAllocated.round_id names one
SERVICE = "fulfillment.packing"
WH = "WH-LON"
SIGKILLED = -9

Lines = list[tuple[str, str, int]]  # (line id, SKU, quantity)
MIGRATIONS = Path(__file__).resolve().parents[2] / "services/fulfillment/packing/migrations"


# --- messages, as the picking service would publish them ---


def created(
    order_id: str,
    task_id: str,
    items: Lines,
    *,
    zone: str | None = None,
    backorder_round: str | None = None,
) -> PickTaskCreated:
    return PickTaskCreated(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        task_id=task_id,
        warehouse_id=WH,
        reservation_id=f"res-{order_id}",
        items=[
            PickItem(line_id=line, sku=sku, quantity=qty, location=f"A-{line}")
            for line, sku, qty in items
        ],
        strategy="zone" if zone else "single_order",
        zone=zone,
        backorder_round=backorder_round,
    )


def completed(
    order_id: str, task_id: str, picked: Lines, short: tuple[str, ...] = ()
) -> PickingCompleted:
    return PickingCompleted(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        task_id=task_id,
        warehouse_id=WH,
        picked=[ItemCount(line_id=line, sku=sku, quantity=qty) for line, sku, qty in picked],
        short_line_ids=list(short),
    )


def new_order() -> str:
    return f"ord-{uuid.uuid4().hex[:10]}"


# --- reading back ---


async def packed_events(stack: Stack, type_: str = "packing.packed.v1") -> list[dict[str, Any]]:
    records = await stack.read_topic("packing.events")
    assert all(r.key is not None and r.key.decode() == data(r)["order_id"] for r in records)
    return [data(r) for r in records if header(r, "ce_type") == type_]


def items(package: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(i["line_id"], i["sku"], i["quantity"]) for i in package["items"]]


async def task_completed(stack: Stack, task_id: str) -> None:
    """Until the completion of ``task_id`` is committed (and with it anything it emitted)."""

    async def done() -> bool:
        rows = await stack.query(
            f"SELECT 1 FROM {S}.packings WHERE tasks -> $1 ? 'picked'", task_id
        )
        return bool(rows)

    await eventually(done, what=f"the completion of {task_id} recorded")


async def outbox_count(stack: Stack) -> int:
    rows = await stack.query(f"SELECT count(*) AS n FROM {S}.outbox")
    return int(rows[0]["n"])


async def consumed(service: ServiceProcess, count: int) -> None:
    async def enough() -> bool:
        total = await service.metric("conveyor_events_consumed_total", topic="picking.events")
        return total >= count

    await eventually(enough, what=f"{count} records of picking.events consumed")


# --- tests ---


async def test_one_task_is_packed_into_the_smallest_box_that_fits(stack: Stack) -> None:
    await stack.start(SERVICE)
    order = new_order()
    lines = [("1", "MUG-BLUE", 2), ("2", "TEE-M", 1)]
    await stack.publish_messages(
        "picking.events", [created(order, "T-1", lines), completed(order, "T-1", lines)]
    )
    await stack.wait_for_records("packing.events", 1)
    [event] = await packed_events(stack)
    assert event["order_id"] == order and event["warehouse_id"] == WH
    assert event["packing_id"] == packing_id_for(order, WH)
    assert event["packer_id"] == "sim-packer"
    [package] = event["packages"]
    # 2 mugs (boxed, 95 mm high) + a tee: too tall for the mailers, too much for BOX-S
    assert package["package_id"] == package_id_for(order, WH, 1)
    assert package["box_code"] == "BOX-M"
    dims = (package["length_mm"], package["width_mm"], package["height_mm"])
    assert dims == (306, 256, 156)  # 300 x 250 x 150 inside, 3 mm walls
    assert package["weight_grams"] == 2 * 400 + 180 + 250  # mugs + tee + the box
    assert items(package) == lines

    [row] = await stack.query(f"SELECT status, packing_id, task_ids, packed FROM {S}.packings")
    assert (row["status"], row["packing_id"], row["task_ids"]) == (
        "packed",
        packing_id_for(order, WH),
        ["T-1"],
    )
    assert json.loads(row["packed"]) == event  # what was emitted, kept beside the state


async def test_zone_tasks_are_packed_together_once_all_completed(stack: Stack) -> None:
    await stack.start(SERVICE)
    mugs, tee = [("1", "MUG-BLUE", 1)], [("2", "TEE-M-BLACK", 1)]

    # in the usual order: both tasks created, then completed one after the other
    usual = new_order()
    await stack.publish_messages(
        "picking.events",
        [
            created(usual, "Z-1", mugs, zone="A"),
            created(usual, "Z-2", tee, zone="B"),
            completed(usual, "Z-1", mugs),
        ],
    )
    await task_completed(stack, "Z-1")
    assert await outbox_count(stack) == 0, "packed with a zone still picking"

    # out of order: a completion arrives before its task's creation
    early = new_order()
    await stack.publish_messages(
        "picking.events",
        [
            created(early, "E-1", mugs, zone="A"),
            completed(early, "E-2", tee),  # E-2 not created yet: it cannot be counted
            completed(early, "E-1", mugs),
        ],
    )
    await task_completed(stack, "E-1")
    assert await outbox_count(stack) == 0, "packed before every task was known"

    await stack.publish_messages(
        "picking.events", [completed(usual, "Z-2", tee), created(early, "E-2", tee, zone="B")]
    )
    await stack.wait_for_records("packing.events", 2)
    events = {e["order_id"]: e for e in await packed_events(stack)}
    assert set(events) == {usual, early}
    for event in events.values():
        [package] = event["packages"]  # a mug and a tee: BOX-M
        assert package["box_code"] == "BOX-M"
        assert items(package) == [("1", "MUG-BLUE", 1), ("2", "TEE-M-BLACK", 1)]
    tasks = await stack.query(f"SELECT order_id, task_ids FROM {S}.packings ORDER BY order_id")
    assert {r["order_id"]: sorted(r["task_ids"]) for r in tasks} == {
        usual: ["Z-1", "Z-2"],
        early: ["E-1", "E-2"],
    }


async def test_redelivered_and_reissued_events_are_packed_once(stack: Stack) -> None:
    packing = await stack.start(SERVICE)
    order = new_order()
    lines = [("1", "HOODIE-L-GREY", 1)]
    messages: list[Message] = [created(order, "T-1", lines), completed(order, "T-1", lines)]
    ids = await stack.publish_messages("picking.events", messages)
    [first] = await stack.wait_for_records("packing.events", 1)

    # the same records again (same ce_id: the inbox skips them) …
    for message, event_id in zip(messages, ids, strict=True):
        await stack.publish_messages("picking.events", [message], id=event_id)
    # … and reissued by picking with new ids: the packing is already done
    await stack.publish_messages("picking.events", messages)
    await consumed(packing, 6)
    assert await packing.metric("conveyor_events_consumed_total", outcome="duplicate") == 2

    async def reissues_committed() -> bool:
        rows = await stack.query(f"SELECT count(*) AS n FROM {S}.inbox")
        return rows[0]["n"] == 4

    await eventually(reissues_committed, what="the reissued events committed")
    assert await outbox_count(stack) == 1
    [event] = await packed_events(stack)
    assert event == data(first)
    [package] = event["packages"]
    assert (package["box_code"], package["weight_grams"]) == ("MAILER-L", 650 + 40)


async def test_short_lines_are_left_out_and_nothing_picked_closes_with_nothing(
    stack: Stack,
) -> None:
    packing = await stack.start(SERVICE)
    short, empty = new_order(), new_order()
    lines = [("1", "MUG-BLUE", 1), ("2", "TEE-M", 1), ("3", "CAP-RED", 2)]
    cap = PickItem(line_id="3", sku="CAP-RED", quantity=2, location="A-3")
    now = datetime.now(UTC)
    await stack.publish_messages(
        "picking.events",
        [
            created(short, "S-1", lines),
            ItemPicked(
                order_id=short,
                occurred_at=now,
                task_id="S-1",
                warehouse_id=WH,
                item=PickItem(line_id="1", sku="MUG-BLUE", quantity=1, location="A-1"),
                picker_id="p-1",
            ),
            ShortPicked(
                order_id=short,
                occurred_at=now,
                task_id="S-1",
                warehouse_id=WH,
                item=cap,
                picked=0,
                picker_id="p-1",
            ),
            completed(short, "S-1", lines[:2], short=("3",)),
            # the other order: its only line was not found at all
            created(empty, "N-1", [("1", "POSTER-A2", 1)]),
            completed(empty, "N-1", [], short=("1",)),
        ],
    )
    await task_completed(stack, "N-1")
    await stack.wait_for_records("packing.events", 2)
    [event] = await packed_events(stack)
    assert event["order_id"] == short
    [package] = event["packages"]
    assert items(package) == [("1", "MUG-BLUE", 1), ("2", "TEE-M", 1)]  # no caps
    assert package["weight_grams"] == 400 + 180 + 250
    # the order with nothing picked: closed with nothing to pack, so no one waits for it
    [nothing] = await packed_events(stack, "packing.nothing_picked.v1")
    assert (nothing["order_id"], nothing["warehouse_id"]) == (empty, WH)
    assert nothing["short_picks"] == [{"task_id": "N-1", "line_id": "1"}]
    assert nothing["packing_id"] == packing_id_for(empty, WH)
    assert await outbox_count(stack) == 2
    statuses = await stack.query(f"SELECT order_id, status FROM {S}.packings")
    assert {r["order_id"]: r["status"] for r in statuses} == {short: "packed", empty: "packed"}

    # progress events have no handler: counted as ignored, never dead-lettered
    await consumed(packing, 6)
    assert await packing.metric("conveyor_events_consumed_total", outcome="ignored") == 2
    assert await packing.metric("conveyor_dead_letters_total") == 0
    assert await stack.read_topic("packing.dlq") == []


async def test_killed_after_the_db_commit_packs_once(stack: Stack) -> None:
    doomed = stack.service(SERVICE, failpoints="consumer.after_db_commit").start()
    await doomed.ready()
    order = new_order()
    lines = [("1", "POSTER-A2", 1)]
    await stack.publish_messages(
        "picking.events", [created(order, "T-1", lines), completed(order, "T-1", lines)]
    )
    assert await doomed.exited() == SIGKILLED

    restarted = await stack.start(SERVICE)
    await stack.wait_for_records("packing.events", 1)

    async def redelivered() -> bool:
        return await restarted.metric("conveyor_events_consumed_total", outcome="duplicate") >= 1

    await eventually(redelivered, what="the committed record redelivered and skipped")
    await consumed(restarted, 2)
    [event] = await packed_events(stack)
    [package] = event["packages"]
    assert (package["box_code"], package["weight_grams"]) == ("TUBE-A2", 120 + 150)
    assert await outbox_count(stack) == 1


async def test_a_backorder_round_at_a_packed_warehouse_is_packed_on_its_own(
    stack: Stack,
) -> None:
    packing = await stack.start(SERVICE)
    order = new_order()
    mugs, tee, poster = [("1", "MUG-BLUE", 2)], [("2", "TEE-M", 1)], [("3", "POSTER-A2", 1)]
    await stack.publish_messages(
        "picking.events", [created(order, "T-1", mugs), completed(order, "T-1", mugs)]
    )
    [first] = [data(r) for r in await stack.wait_for_records("packing.events", 1)]
    assert first["backorder_round"] is None
    assert first["packing_id"] == packing_id_for(order, WH)  # the reservation's ids as ever

    await stack.publish_messages(
        "picking.events",
        [
            created(order, "B-1", tee, backorder_round=ROUND),  # a later allocation round
            created(order, "T-1", mugs),  # reissued: its round is packed already
            created(order, "T-2", poster),  # a late task of the packed reservation round
            completed(order, "B-1", tee),
        ],
    )
    await stack.wait_for_records("packing.events", 2)
    events = await packed_events(stack)
    assert events[0] == first
    second = events[1]
    assert (second["order_id"], second["warehouse_id"]) == (order, WH)
    assert second["backorder_round"] == ROUND
    assert second["packing_id"] == packing_id_for(order, WH, ROUND) != first["packing_id"]
    [package] = second["packages"]  # the tee alone: this round's units only
    assert items(package) == tee
    assert package["package_id"] == package_id_for(order, WH, 1, ROUND)
    assert package["package_id"] not in {p["package_id"] for p in first["packages"]}

    rows = await stack.query(
        f"""SELECT backorder_round, status, packing_id, task_ids, tasks::text AS tasks
            FROM {S}.packings ORDER BY backorder_round"""
    )
    assert [(r["backorder_round"], r["status"], r["task_ids"]) for r in rows] == [
        ("", "packed", ["T-1"]),
        (ROUND, "packed", ["B-1"]),
    ]
    assert set(json.loads(rows[0]["tasks"])) == {"T-1", "T-2"}  # T-2 recorded, not boxed
    assert [r["packing_id"] for r in rows] == [first["packing_id"], second["packing_id"]]
    await consumed(packing, 6)
    late = [line for line in packing.log().splitlines() if "packing.task_after_packing" in line]
    assert len(late) == 1 and "T-2" in late[0]


async def test_rows_from_before_rounds_stay_valid(stack: Stack, tmp_path: Path) -> None:
    """Rows written before rounds existed: the packed reservation keeps its packing and a
    new round at its warehouse is packed on its own; a group held back by a completion
    that came before its creation stays held back until the creation places it."""
    before = tmp_path / "migrations"
    before.mkdir()
    shutil.copy(MIGRATIONS / "0001_packings_and_tasks.sql", before)
    await migrate(stack.database_url, S, before)
    packed_order, waiting_order = new_order(), new_order()
    mug, tee = [("1", "MUG-BLUE", 1)], [("2", "TEE-M", 1)]
    old_packing = {"packing_id": packing_id_for(packed_order, WH), "packages": []}

    def report(lines: Lines, *, created: bool = True) -> dict[str, Any]:
        picked = [{"line_id": line, "sku": sku, "quantity": n} for line, sku, n in lines]
        done = {"completed_at": "2026-01-01T00:00:00+00:00", "picked": picked}
        return {"created_at": "2026-01-01T00:00:00+00:00", **done} if created else done

    await stack.query(
        f"""INSERT INTO {S}.packings (order_id, warehouse_id, tasks, status, packing_id,
                                      packed, task_ids, packed_at)
            VALUES ($1, $3, $4::jsonb, 'packed', $5, $6::jsonb, '{{T-1}}', now()),
                   ($2, $3, $7::jsonb, 'waiting', NULL, NULL, NULL, NULL)""",
        packed_order,
        waiting_order,
        WH,
        json.dumps({"T-1": report(mug)}),
        old_packing["packing_id"],
        json.dumps(old_packing),
        # W-2's completion came before its creation: it holds W-1 back
        json.dumps({"W-1": report(mug), "W-2": report(tee, created=False)}),
    )
    packing = await stack.start(SERVICE)  # applies 0002
    await stack.publish_messages(
        "picking.events",
        [
            created(packed_order, "T-1", mug),  # reissued: the stored packing stands
            created(packed_order, "B-1", tee, backorder_round=ROUND),
            completed(packed_order, "B-1", tee),
            completed(waiting_order, "W-1", mug),  # reissued: still held back by W-2
        ],
    )
    await stack.settled(packing, 4)
    events = await packed_events(stack)
    assert [(e["order_id"], e["backorder_round"]) for e in events] == [(packed_order, ROUND)]
    assert events[0]["packing_id"] == packing_id_for(packed_order, WH, ROUND)
    assert [items(p) for p in events[0]["packages"]] == [tee]

    # W-2 was of a later round: it goes there, and no longer holds W-1 back
    await stack.publish_messages(
        "picking.events", [created(waiting_order, "W-2", tee, backorder_round=ROUND)]
    )
    await stack.settled(packing, 5)
    events = [e for e in await packed_events(stack) if e["order_id"] == waiting_order]
    assert [e["backorder_round"] for e in events] == [None, ROUND]
    assert [[items(p) for p in e["packages"]] for e in events] == [[mug], [tee]]
    assert events[0]["packing_id"] == packing_id_for(waiting_order, WH)
    rows = await stack.query(
        f"""SELECT order_id, backorder_round, status, packing_id, task_ids FROM {S}.packings
            ORDER BY order_id = $1 DESC, backorder_round""",
        packed_order,
    )
    assert [tuple(r) for r in rows] == [
        (packed_order, "", "packed", old_packing["packing_id"], ["T-1"]),
        (packed_order, ROUND, "packed", packing_id_for(packed_order, WH, ROUND), ["B-1"]),
        (waiting_order, "", "packed", packing_id_for(waiting_order, WH), ["W-1"]),
        (waiting_order, ROUND, "packed", packing_id_for(waiting_order, WH, ROUND), ["W-2"]),
    ]
    assert await stack.query(f"SELECT 1 FROM {S}.order_warehouses WHERE early <> '{{}}'") == []


# --- a run of reports applied at once ends as the same reports one by one ---


def run_of_reports() -> list[Message]:
    """Several orders, interleaved, most with several reports: the usual order, a
    completion before its creation, repeats with new ids, a task after packing, a group
    that picked nothing first, one still waiting, progress events between them, a new
    round at a packed warehouse, and a backorder round's early completion holding back
    the reservation round until its creation lets both be packed."""
    mug, tee, poster = [("1", "MUG-BLUE", 1)], [("2", "TEE-M-BLACK", 1)], [("3", "POSTER-A2", 1)]
    both = [("1", "MUG-BLUE", 2), ("2", "TEE-M", 1)]
    now = datetime.now(UTC)
    progress = ItemPicked(
        order_id="run-zones",
        occurred_at=now,
        task_id="Z-1",
        warehouse_id=WH,
        item=PickItem(line_id="1", sku="MUG-BLUE", quantity=1, location="A-1"),
        picker_id="p-1",
    )
    return [
        created("run-single", "S-1", both),
        created("run-zones", "Z-1", mug, zone="A"),
        completed("run-early", "E-2", tee),  # its task is not created yet: it holds back
        created("run-zones", "Z-2", tee, zone="B"),
        completed("run-single", "S-1", both),  # packed
        created("run-early", "E-1", mug, zone="A"),
        progress,
        completed("run-zones", "Z-1", mug),
        completed("run-early", "E-1", mug),
        created("run-repeat", "R-1", poster),
        completed("run-zones", "Z-2", tee),  # packed
        created("run-early", "E-2", tee, zone="B"),  # packed
        completed("run-repeat", "R-1", poster),  # packed
        completed("run-repeat", "R-1", poster),  # reissued: nothing more
        created("run-late", "L-1", mug),
        created("run-empty", "N-1", mug),
        completed("run-late", "L-1", mug),  # packed
        completed("run-empty", "N-1", [], short=("1",)),  # nothing picked: closed
        created("run-late", "L-2", tee),  # after packing: recorded, not boxed
        created("run-repeat", "R-1", poster),  # reissued
        created("run-empty", "N-2", poster, backorder_round=ROUND),  # allocated again
        created("run-waiting", "W-1", mug),
        completed("run-empty", "N-2", poster),  # packed: the poster, its round alone
        created("run-late", "L-3", poster, backorder_round=ROUND),  # a new round
        completed("run-rounds", "B-1", tee),  # before its creation: holds T-1 back
        created("run-rounds", "T-1", mug),
        completed("run-late", "L-3", poster),  # packed: its round alone
        completed("run-rounds", "T-1", mug),
        created("run-rounds", "B-1", tee, backorder_round=ROUND),  # packed: both rounds
    ]


async def test_a_run_of_reports_ends_as_the_same_reports_one_by_one(stack: Stack) -> None:
    """The same records to two packing services: one takes them in one poll (one run),
    the other one record per poll. Same rows, same events in the same order, each caused
    by the same record."""
    one_by_one_db = stack.sibling_database("packing_one_by_one")
    reports = run_of_reports()
    # published before the services start, in one partition: the first poll hands over
    # all of them, in this order (by order id they would spread over the partitions)
    envelopes = [
        Envelope(type=m.TYPE, source="test/picking", data=m.to_json(), subject=m.subject)
        for m in reports
    ]
    await stack.publish("picking.events", [(b"one-run", e.data, to_headers(e)) for e in envelopes])
    batched, one_by_one = await stack.start_with_one_by_one_twin(SERVICE, one_by_one_db)
    for process in (batched, one_by_one):
        await consumed(process, len(reports))

    # one poll, never redone record by record (that would hide a broken run)
    assert await batched.metric("conveyor_batch_size_count", topic="picking.events") == 1
    assert await batched.metric("conveyor_retries_total", kind="handler") == 0
    state = await packing_state(stack.database_url)
    assert state == await packing_state(one_by_one_db)

    cause = {e.id: n for n, e in enumerate(envelopes)}
    assert [(p["order_id"], p["backorder_round"], cause[c]) for p, c in state["outbox"]] == [
        ("run-single", None, 4),
        ("run-zones", None, 10),
        ("run-early", None, 11),
        ("run-repeat", None, 12),
        ("run-late", None, 16),
        ("run-empty", None, 17),
        ("run-empty", ROUND, 22),
        ("run-late", ROUND, 26),
        ("run-rounds", None, 28),
        ("run-rounds", ROUND, 28),
    ]
    rows = {(r[0], r[1]): r for r in state["packings"]}
    assert rows[("run-empty", "")][3:5] == ("packed", ["N-1"])  # with nothing packed
    assert rows[("run-empty", ROUND)][3:5] == ("packed", ["N-2"])
    assert rows[("run-late", "")][3:5] == ("packed", ["L-1"])
    assert rows[("run-late", ROUND)][3:5] == ("packed", ["L-3"])
    assert rows[("run-rounds", "")][3:5] == ("packed", ["T-1"])
    assert rows[("run-rounds", ROUND)][3:5] == ("packed", ["B-1"])
    assert rows[("run-waiting", "")][3:5] == ("waiting", None)
    assert set(json.loads(rows[("run-late", "")][2])) == {"L-1", "L-2"}
    packages = {
        (p["order_id"], p["backorder_round"]): p.get("packages") for p, _ in state["outbox"]
    }
    assert packages[("run-empty", None)] is None, "nothing picked: no packages"
    assert [items(p) for p in packages[("run-empty", ROUND)]] == [[("3", "POSTER-A2", 1)]]
    assert [items(p) for p in packages[("run-late", ROUND)]] == [[("3", "POSTER-A2", 1)]]
    assert [items(p) for p in packages[("run-rounds", ROUND)]] == [[("2", "TEE-M-BLACK", 1)]]
    assert all(early == "{}" for *_, early in state["order_warehouses"])
    assert "packing.task_after_packing" in batched.log()


async def packing_state(database_url: str) -> dict[str, list[Any]]:
    """The rows, and the outbox in order: each event (without its time) and the id of
    the record that caused it."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": S})
    try:
        packings = await conn.fetch(
            """SELECT order_id, backorder_round, tasks::text, status, task_ids, packing_id,
                      packed - 'occurred_at' AS packed
               FROM packings ORDER BY order_id, warehouse_id, backorder_round"""
        )
        order_warehouses = await conn.fetch(
            """SELECT order_id, warehouse_id, early::text FROM order_warehouses
               ORDER BY order_id, warehouse_id"""
        )
        outbox = await conn.fetch(
            "SELECT header_names, header_values, payload FROM outbox ORDER BY id"
        )
    finally:
        await conn.close()
    return {
        "packings": [tuple(r) for r in packings],
        "order_warehouses": [tuple(r) for r in order_warehouses],
        "outbox": [
            (
                {k: v for k, v in json.loads(r["payload"]).items() if k != "occurred_at"},
                dict(zip(r["header_names"], r["header_values"], strict=True))[
                    "causation_id"
                ].decode(),
            )
            for r in outbox
        ],
    }
