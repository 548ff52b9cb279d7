"""The shipping service on a real broker and PostgreSQL: order.placed and packing.packed in
either order → a label and a dispatch; the simulated carrier's scans → tracking events and
delivery; the signed webhook; redeliveries and rollbacks that must not buy a second label."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.fulfillment.shipping.app import DEV_WEBHOOK_SECRET
from services.fulfillment.shipping.domain.calendar import add_business_days
from services.fulfillment.shipping.domain.shipment import shipment_id_for
from services.fulfillment.shipping.webhook import signed_headers
from shared.runtime.topics import ensure_topics
from shared.schemas import Envelope, Message, to_headers
from shared.schemas.events.fulfillment import (
    CarrierUpdate,
    ItemCount,
    Package,
    Packed,
    TrackingStatus,
)
from shared.schemas.events.order import OrderCancelled, OrderPlaced
from tests.factories import placed_event
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

SHIPPING = "fulfillment.shipping"
LABEL = "shipping.label_purchased.v1"
DISPATCHED = "shipment.dispatched.v1"
TRACKING = "shipment.tracking_updated.v1"
DELIVERED = "shipment.delivered.v1"
EXCEPTION = "shipment.exception.v1"

# --- messages ---


def new_order_id() -> str:
    return str(uuid.uuid4())


def placed(order_id: str, *, country: str = "GB", service_level: str = "standard") -> OrderPlaced:
    event = placed_event(order_id, [("MUG-BLUE", 2)], country=country)
    return event.model_copy(update={"service_level": service_level})


def packing_id(order_id: str, warehouse: str = "WH-LON", backorder_round: str | None = None) -> str:
    """The packing of a warehouse's units of an order in one allocation round."""
    own_round = f"-{backorder_round}" if backorder_round else ""
    return f"pack-{order_id}-{warehouse}{own_round}"


def packed(
    order_id: str,
    warehouse: str = "WH-LON",
    *,
    boxes: int = 2,
    backorder_round: str | None = None,
) -> Packed:
    packing = packing_id(order_id, warehouse, backorder_round)
    return Packed(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        packing_id=packing,
        warehouse_id=warehouse,
        packer_id="packer-7",
        backorder_round=backorder_round,
        packages=[
            Package(
                package_id=f"{packing}-box{n}",
                box_code="M",
                length_mm=300,
                width_mm=200,
                height_mm=150,
                weight_grams=1200,
                items=[ItemCount(line_id="1", sku="MUG-BLUE", quantity=1)],
            )
            for n in range(1, boxes + 1)
        ],
    )


# a backorder allocation round, as BackorderAllocated.round_id names it
ROUND = "backorder:5c0ffee15ba5eba11c0d"


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        order_version=2,
        occurred_at=datetime.now(UTC),
        reasons=[],
        cancelled_by="customer",
    )


# --- waiting and reading ---


async def events(stack: Stack, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the order's shipping events, in order."""
    records = await stack.read_topic("shipping.events")
    found = [(header(r, "ce_type") or "", data(r)) for r in records]
    return [(t, d) for t, d in found if d["order_id"] == order_id]


async def until(stack: Stack, order_id: str, *expected: str) -> list[tuple[str, dict[str, Any]]]:
    """Wait until the order's shipping events are exactly ``expected``, in order."""

    async def arrived() -> list[tuple[str, dict[str, Any]]]:
        found = await events(stack, order_id)
        return found if [t for t, _ in found] == list(expected) else []

    return await eventually(arrived, what=f"{list(expected)} for order {order_id}")


async def settled(stack: Stack, shipping: ServiceProcess, consumed: int) -> None:
    """Every published record consumed, every event it caused published, none dead-lettered."""
    await stack.settled(shipping, consumed)
    assert await shipping.metric("conveyor_dead_letters_total") == 0, shipping.log()


async def status(stack: Stack, shipment_id: str) -> str | None:
    rows = await stack.query(
        "SELECT status FROM shipping_service.shipments WHERE shipment_id = $1", shipment_id
    )
    return rows[0]["status"] if rows else None


async def label_calls(stack: Stack, shipment_id: str) -> list[asyncpg.Record]:
    return await stack.query(
        """SELECT operation, attempt, outcome, idempotency_key FROM shipping_service.carrier_calls
            WHERE shipment_id = $1 AND operation = 'buy_label' ORDER BY id""",
        shipment_id,
    )


async def execute(stack: Stack, sql: str) -> None:
    conn = await stack.db()
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def publish_as_one_run(stack: Stack, topic: str, messages: list[Message]) -> None:
    """Publish under one key, so into one partition: a consumer that finds them there
    gets them in one poll, as one run of each handler (interleaved records of another
    handler end a run). Shipping reads the order id from the data, not from the key."""
    envelopes = [
        Envelope(type=m.TYPE, source="test/storefront", data=m.to_json(), subject=m.subject)
        for m in messages
    ]
    await stack.publish(topic, [(b"one-run", e.data, to_headers(e)) for e in envelopes])


def run_sizes(shipping: ServiceProcess, event: str) -> list[int]:
    """For each time ``event`` was logged in a Batched handler: how many records its run had."""
    lines = shipping.log_path.read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    return [e["batched_records"] for e in logged if e["event"] == event and "batched_records" in e]


async def no_run_went_again(shipping: ServiceProcess) -> None:
    """A run that fails is redone record by record, which would hide a broken batch."""
    assert await shipping.metric("conveyor_retries_total", kind="handler") == 0, shipping.log()


async def shipment_row(stack: Stack, order_id: str) -> asyncpg.Record:
    """The order's one shipment, with counts of what it has."""
    [row] = await shipment_rows(stack, order_id)
    return row


async def shipment_rows(stack: Stack, order_id: str) -> list[asyncpg.Record]:
    """The order's shipments, with counts of what each has, in packing id order (the
    reservation round's packing id is a prefix of a backorder round's, in these tests)."""
    return await stack.query(
        """SELECT shipment_id, backorder_round, status, estimated_delivery, last_scan_at,
                  (SELECT count(*) FROM shipping_service.tracking_scans t
                    WHERE t.shipment_id = s.shipment_id) AS scans,
                  (SELECT array_agg(milestone ORDER BY milestone)
                     FROM shipping_service.shipment_milestones m
                    WHERE m.shipment_id = s.shipment_id) AS milestones,
                  (SELECT count(*) FROM shipping_service.carrier_calls c
                    WHERE c.shipment_id = s.shipment_id AND c.operation = 'buy_label') AS buys,
                  (SELECT count(*) FROM shipping_service.simulated_tracking p
                    WHERE p.shipment_id = s.shipment_id) AS enrolled
             FROM shipping_service.shipments s WHERE order_id = $1 ORDER BY packing_id""",
        order_id,
    )


# a well-formed secret that is not the service's
OTHER_SECRET = "whsec_" + base64.b64encode(b"not the secret, but long enough").decode()


def signed(body: bytes, *secrets: str, **sent: Any) -> dict[str, str]:
    """What a carrier sends with ``body``: Standard Webhooks headers under a fresh message
    id, signed now (or ``timestamp=``) with each secret (default: the service's)."""
    signing = signed_headers(body, *(secrets or (DEV_WEBHOOK_SECRET,)), **sent)
    return {**signing, "Content-Type": "application/json"}


def scan_body(tracking_number: str, event_id: str, status: str, **extra: Any) -> bytes:
    return json.dumps(
        {
            "tracking_number": tracking_number,
            "carrier_event_id": event_id,
            "status": status,
            "occurred_at": datetime.now(UTC).isoformat(),
            **extra,
        }
    ).encode()


def check_dispatch(dispatch: dict[str, Any], label: dict[str, Any], boxes: int) -> None:
    """One tracking number per package plus a master, all distinct, and a delivery date."""
    numbers = [p["tracking_number"] for p in dispatch["packages"]]
    assert len(numbers) == boxes
    assert len({dispatch["tracking_number"], *numbers}) == boxes + 1
    assert dispatch["estimated_delivery"] is not None
    assert date.fromisoformat(dispatch["estimated_delivery"]) >= datetime.now(UTC).date()
    assert label["tracking_number"] == dispatch["tracking_number"]
    assert {p["tracking_number"] for p in label["packages"]} == set(numbers)
    assert (label["carrier"], label["service"]) == (dispatch["carrier"], dispatch["service"])
    assert label["cost"]["amount_minor"] > 0


# --- tests ---


async def test_placed_and_packed_in_either_order_ship_and_the_simulator_delivers(
    stack: Stack,
) -> None:
    shipping = await stack.start(SHIPPING, shipping_simulator_step_seconds="0")
    first_placed, first_packed = new_order_id(), new_order_id()
    happy_path = (LABEL, DISPATCHED, TRACKING, TRACKING, TRACKING, DELIVERED)

    # placed, then packed: shipped as soon as packed
    await stack.publish_messages("order.events", [placed(first_placed)])
    await stack.publish_messages("packing.events", [packed(first_placed)])
    # packed first: the shipment waits for the order, then ships when it is placed
    await stack.publish_messages("packing.events", [packed(first_packed, "WH-NJ", boxes=1)])
    waiting = shipment_id_for(f"pack-{first_packed}-WH-NJ")
    recorded = await eventually(
        lambda: status(stack, waiting), what="the packing recorded before the order"
    )
    assert recorded == "awaiting_order"
    assert await events(stack, first_packed) == []
    await stack.publish_messages(
        "order.events", [placed(first_packed, country="DE", service_level="express")]
    )

    for order_id, boxes in ((first_placed, 2), (first_packed, 1)):
        found = await until(stack, order_id, *happy_path)
        (_, label), (_, dispatch) = found[:2]
        check_dispatch(dispatch, label, boxes)
        scans = [d for t, d in found if t == TRACKING]
        assert [s["status"] for s in scans] == ["in_transit", "out_for_delivery", "delivered"]
        assert {s["tracking_number"] for s in scans} == {dispatch["tracking_number"]}
        assert len({s["carrier_event_id"] for s in scans}) == 3
        delivered = found[-1][1]
        assert delivered["shipment_id"] == dispatch["shipment_id"]

    # the warehouse in New Jersey ships to Germany by express: international, 2 days
    # promised, so the fastest air service, flagged as missing the promise
    [(_, nj_dispatch)] = [(t, d) for t, d in await events(stack, first_packed) if t == DISPATCHED]
    assert (nj_dispatch["warehouse_id"], nj_dispatch["carrier"]) == ("WH-NJ", "globalair")
    assert nj_dispatch["shipment_id"] == waiting

    async with httpx.AsyncClient(base_url=shipping.url) as http:
        view = (await http.get(f"/shipments/{waiting}")).json()
        assert view["status"] == "delivered"
        assert view["meets_promise"] is False
        assert view["label"]["idempotency_key"] == f"label:pack-{first_packed}-WH-NJ"
        assert [s["status"] for s in view["scans"]] == [
            "in_transit",
            "out_for_delivery",
            "delivered",
        ]
        [by_order] = (await http.get(f"/orders/{first_placed}/shipments")).json()
        assert by_order["status"] == "delivered" and by_order["meets_promise"] is True
        assert len(by_order["packages"]) == 2
        assert all(p["tracking_number"] for p in by_order["packages"])
        assert (await http.get(f"/shipments/{uuid.uuid4()}")).status_code == 404
        assert (await http.get(f"/orders/{new_order_id()}/shipments")).json() == []

    # every scan of the simulated carrier went through shipping.commands
    commands = await stack.read_topic("shipping.commands")
    assert len(commands) == 6
    await settled(stack, shipping, consumed=4 + 6)


async def test_a_backorder_round_ships_again_from_a_warehouse_that_shipped(
    stack: Stack,
) -> None:
    """A backorder later allocated at a warehouse that shipped the order already is packed
    under its own packing id: shipping sends it as a shipment of its own, with its own
    label, and says which round it carries."""
    shipping = await stack.start(SHIPPING, shipping_simulator_step_seconds="0")
    order_id = new_order_id()
    happy_path = (LABEL, DISPATCHED, TRACKING, TRACKING, TRACKING, DELIVERED)
    await stack.publish_messages("order.events", [placed(order_id)])
    await stack.publish_messages("packing.events", [packed(order_id)])
    await until(stack, order_id, *happy_path)
    # the goods receipt came in after the reservation round was delivered
    await stack.publish_messages(
        "packing.events", [packed(order_id, boxes=1, backorder_round=ROUND)]
    )
    found = await until(stack, order_id, *happy_path, *happy_path)
    await settled(stack, shipping, consumed=3)

    rounds = found[:6], found[6:]
    (_, first_label), (_, first), *_ = rounds[0]
    (_, second_label), (_, second), *_ = rounds[1]
    check_dispatch(first, first_label, 2)
    check_dispatch(second, second_label, 1)
    assert (first["backorder_round"], second["backorder_round"]) == (None, ROUND)
    assert first["warehouse_id"] == second["warehouse_id"] == "WH-LON"
    # ids and keys as before for the reservation round; the round's own for the backorder
    assert first["shipment_id"] == shipment_id_for(packing_id(order_id))
    assert second["shipment_id"] == shipment_id_for(packing_id(order_id, backorder_round=ROUND))
    numbers = [
        {d["tracking_number"], *(p["tracking_number"] for p in d["packages"])}
        for d in (first, second)
    ]
    assert not numbers[0] & numbers[1]
    for events_of_round in rounds:
        _, (_, dispatch), *_ = events_of_round
        scans = [d for t, d in events_of_round if t == TRACKING]
        assert {s["shipment_id"] for s in scans} == {dispatch["shipment_id"]}
        assert {s["tracking_number"] for s in scans} == {dispatch["tracking_number"]}
        assert events_of_round[-1][1]["shipment_id"] == dispatch["shipment_id"]  # delivered

    async with httpx.AsyncClient(base_url=shipping.url) as http:
        views = (await http.get(f"/orders/{order_id}/shipments")).json()
    assert [(v["shipment_id"], v["status"], v["backorder_round"]) for v in views] == [
        (first["shipment_id"], "delivered", None),
        (second["shipment_id"], "delivered", ROUND),
    ]
    assert [v["label"]["idempotency_key"] for v in views] == [
        f"label:{packing_id(order_id)}",
        f"label:{packing_id(order_id, backorder_round=ROUND)}",
    ]
    for view in views:
        assert len(await label_calls(stack, view["shipment_id"])) == 1


async def test_the_simulator_reports_delays_and_failed_attempts(stack: Stack) -> None:
    await stack.start(
        SHIPPING,
        shipping_simulator_step_seconds="0",
        shipping_simulator_delay_probability="1",
        shipping_simulator_exception_probability="1",
    )
    order_id = new_order_id()
    await stack.publish_messages("order.events", [placed(order_id)])
    await stack.publish_messages("packing.events", [packed(order_id)])
    found = await until(
        stack,
        order_id,
        LABEL,
        DISPATCHED,
        TRACKING,  # in transit
        TRACKING,  # delayed
        EXCEPTION,
        TRACKING,  # out for delivery
        TRACKING,  # delivery exception
        EXCEPTION,
        TRACKING,  # out for delivery, second attempt
        TRACKING,  # delivered
        DELIVERED,
    )
    eta = date.fromisoformat(found[1][1]["estimated_delivery"])
    delayed, failed = (d for t, d in found if t == EXCEPTION)
    assert (delayed["status"], delayed["reason"]["code"]) == ("delayed", "delayed")
    assert date.fromisoformat(delayed["estimated_delivery"]) == add_business_days(eta, 1)
    assert failed["status"] == "delivery_exception"
    assert date.fromisoformat(failed["estimated_delivery"]) == add_business_days(eta, 2)
    assert "Recipient not available" in failed["reason"]["message"]


async def test_signed_webhook(stack: Stack) -> None:
    shipping = await stack.start(SHIPPING, shipping_simulator_enabled="false")
    order_id = new_order_id()
    await stack.publish_messages("order.events", [placed(order_id)])
    await stack.publish_messages("packing.events", [packed(order_id)])
    _, (_, dispatch) = await until(stack, order_id, LABEL, DISPATCHED)
    carrier, master = dispatch["carrier"], dispatch["tracking_number"]
    package_number = dispatch["packages"][1]["tracking_number"]
    url = f"/carriers/{carrier}/webhook"
    later = add_business_days(date.fromisoformat(dispatch["estimated_delivery"]), 3)

    async with httpx.AsyncClient(base_url=shipping.url) as http:
        delayed = scan_body(
            master,
            "evt-delayed",
            "delayed",
            location="Hub",
            description="Storm",
            estimated_delivery=later.isoformat(),
        )
        assert (await http.post(url, content=delayed)).status_code == 401
        wrong = signed(delayed, OTHER_SECRET)
        assert (await http.post(url, content=delayed, headers=wrong)).status_code == 401
        tampered = delayed.replace(b"Storm", b"Sunny")
        assert (await http.post(url, content=tampered, headers=signed(delayed))).status_code == 401
        other = "eurolink" if carrier != "eurolink" else "swiftpost"
        for wrong_carrier in (other, "nope"):  # its numbers are not the other carrier's
            path = f"/carriers/{wrong_carrier}/webhook"
            assert (
                await http.post(path, content=delayed, headers=signed(delayed))
            ).status_code == 404
        bogus = scan_body("NOPE123", "evt-x", "in_transit")
        assert (await http.post(url, content=bogus, headers=signed(bogus))).status_code == 404
        invalid = scan_body(master, "evt-bad", "teleported")
        assert (await http.post(url, content=invalid, headers=signed(invalid))).status_code == 422
        assert (await http.post(url, content=b"{", headers=signed(b"{"))).status_code == 422

        first = await http.post(url, content=delayed, headers=signed(delayed))
        assert first.status_code == 202, first.text
        assert first.json() == {
            "result": "accepted",
            "order_id": order_id,
            "shipment_id": dispatch["shipment_id"],
        }
        again = await http.post(url, content=delayed, headers=signed(delayed))
        assert again.status_code == 200 and again.json()["result"] == "duplicate"

        failed = scan_body(package_number, "evt-failed", "delivery_exception", location="Door")
        assert (await http.post(url, content=failed, headers=signed(failed))).status_code == 202
        await until(stack, order_id, LABEL, DISPATCHED, TRACKING, EXCEPTION, TRACKING, EXCEPTION)

        for n, final in enumerate(("delivered", "delivered", "returned_to_sender")):
            body = scan_body(master, f"evt-final-{n}", final, location="Front door")
            assert (await http.post(url, content=body, headers=signed(body))).status_code == 202

    found = await until(
        stack,
        order_id,
        LABEL,
        DISPATCHED,
        TRACKING,
        EXCEPTION,
        TRACKING,
        EXCEPTION,
        TRACKING,
        DELIVERED,
        TRACKING,  # a second delivered scan: recorded, no second delivery
        TRACKING,  # after delivery, no exception either
    )
    _, _, (_, delayed_scan), (_, delay), (_, failed_scan), (_, failure) = found[:6]
    assert (delayed_scan["status"], delayed_scan["carrier_event_id"]) == ("delayed", "evt-delayed")
    assert delay["status"] == "delayed" and delay["reason"]["message"] == "Storm"
    assert delay["estimated_delivery"] == later.isoformat()
    assert failed_scan["tracking_number"] == package_number
    assert failure["status"] == "delivery_exception"
    assert failure["tracking_number"] == master
    assert failure["estimated_delivery"] == later.isoformat()  # the ETA the carrier last gave
    assert found[7][1]["location"] == "Front door"
    assert await status(stack, dispatch["shipment_id"]) == "delivered"
    # the retried webhook call queued one command
    assert len(await stack.read_topic("shipping.commands")) == 5
    await settled(stack, shipping, consumed=2 + 5)

    # a scan reported again as a command (a simulator batch repeated after a crash) and a
    # scan for a number nobody issued: recorded once, ignored
    def update(tracking_number: str, event_id: str) -> CarrierUpdate:
        return CarrierUpdate(
            order_id=order_id,
            carrier=carrier,
            tracking_number=tracking_number,
            carrier_event_id=event_id,
            status="delayed",
            occurred_at=datetime.now(UTC),
        )

    await stack.publish_messages(
        "shipping.commands", [update(master, "evt-delayed"), update("NOPE123", "evt-new")]
    )
    await settled(stack, shipping, consumed=2 + 5 + 2)
    assert await events(stack, order_id) == found
    [scans] = await stack.query(
        "SELECT count(*) AS n FROM shipping_service.tracking_scans WHERE shipment_id = $1",
        dispatch["shipment_id"],
    )
    assert scans["n"] == 5


async def test_redelivered_or_rolled_back_packing_buys_one_label(stack: Stack) -> None:
    shipping = await stack.start(SHIPPING, shipping_simulator_enabled="false")
    redelivered, rolled_back, cancelled_first = (new_order_id() for _ in range(3))
    rolled_back_shipment = shipment_id_for(f"pack-{rolled_back}-WH-BER")
    # the label's transaction fails once after the carrier sold the label: as if the
    # process died between buying and committing (the sequence does not roll back)
    await execute(
        stack,
        f"""CREATE SEQUENCE shipping_service.fail_once;
            CREATE FUNCTION shipping_service.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.shipment_id = '{rolled_back_shipment}'
                   AND nextval('shipping_service.fail_once') = 1 THEN
                    RAISE EXCEPTION 'injected failure after the label was bought';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_once BEFORE INSERT ON shipping_service.labels
                FOR EACH ROW EXECUTE FUNCTION shipping_service.fail_once();""",
    )

    await stack.publish_messages(
        "order.events", [placed(redelivered), placed(rolled_back, country="FR")]
    )
    [packed_id] = await stack.publish_messages("packing.events", [packed(redelivered)])
    await stack.publish_messages("packing.events", [packed(redelivered)], id=packed_id)
    await stack.publish_messages("packing.events", [packed(redelivered)])  # a new ce_id
    # cancelled before it was packed (and the cancellation seen first): no label
    await stack.publish_messages(
        "order.events", [placed(cancelled_first), cancelled(cancelled_first)]
    )
    await settled(stack, shipping, consumed=7)
    # only now: a run that fails is redone record by record, and the other packings in
    # it would ask the carrier again (with their keys: for the same labels)
    await stack.publish_messages("packing.events", [packed(rolled_back, "WH-BER")])
    await settled(stack, shipping, consumed=8)
    await stack.publish_messages("packing.events", [packed(cancelled_first)])
    await settled(stack, shipping, consumed=9)

    for order_id in (redelivered, rolled_back):
        await until(stack, order_id, LABEL, DISPATCHED)
    assert await events(stack, cancelled_first) == []
    assert await status(stack, shipment_id_for(f"pack-{cancelled_first}-WH-LON")) == "cancelled"
    assert await shipping.metric("conveyor_events_consumed_total", outcome="duplicate") == 1

    shipment = shipment_id_for(f"pack-{redelivered}-WH-LON")
    calls = await label_calls(stack, shipment)
    assert [(c["attempt"], c["outcome"]) for c in calls] == [(1, "answered")]
    key = f"label:pack-{redelivered}-WH-LON"
    assert calls[0]["idempotency_key"] == key
    ledger = await stack.query(
        "SELECT idempotency_key, calls FROM shipping_service.simulated_carrier_labels"
    )
    by_key = {r["idempotency_key"]: r["calls"] for r in ledger}
    assert by_key[key] == 1
    # rolled back after buying: asked again with the same key, the carrier's first label
    rolled_key = f"label:pack-{rolled_back}-WH-BER"
    assert by_key[rolled_key] == 2
    assert len(await label_calls(stack, rolled_back_shipment)) == 1  # the committed attempt
    [label] = await stack.query(
        "SELECT tracking_number FROM shipping_service.labels WHERE shipment_id = $1",
        rolled_back_shipment,
    )
    [sold] = await stack.query(
        "SELECT tracking_number FROM shipping_service.simulated_carrier_labels "
        "WHERE idempotency_key = $1",
        rolled_key,
    )
    assert label["tracking_number"] == sold["tracking_number"]
    assert await shipping.metric("conveyor_retries_total", kind="handler") >= 1

    # the database refuses a second label, dispatch or delivery for a shipment
    conn = await stack.db()
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                """INSERT INTO shipping_service.labels
                       (shipment_id, idempotency_key, carrier, service, tracking_number,
                        label_url, cost_minor, currency, estimated_delivery)
                   VALUES ($1, 'other-key', 'swiftpost', 'ground', 'OTHER1', '', 1, 'EUR',
                           current_date)""",
                shipment,
            )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                """INSERT INTO shipping_service.shipment_milestones
                       (shipment_id, milestone, event_id) VALUES ($1, 'dispatched', 'again')""",
                shipment,
            )
        await conn.execute(
            """INSERT INTO shipping_service.shipment_milestones (shipment_id, milestone, event_id)
               VALUES ($1, 'delivered', 'first')""",
            shipment,
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                """INSERT INTO shipping_service.shipment_milestones
                       (shipment_id, milestone, event_id) VALUES ($1, 'delivered', 'again')""",
                shipment,
            )
        # one shipment per packing, and per order, warehouse and allocation round
        insert_shipment = """INSERT INTO shipping_service.shipments
                                 (shipment_id, packing_id, order_id, warehouse_id,
                                  backorder_round, packages, packed_event_id, status)
                             VALUES ($1, $2, $3, 'WH-LON', $4, '[]', 'e', 'awaiting_order')"""
        for packing in (packing_id(redelivered), "another-packing-of-the-reservation"):
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(insert_shipment, "another-id", packing, redelivered, None)
        backorder = conn.transaction()
        await backorder.start()
        try:  # a backorder round of the same order and warehouse ships on its own, once
            await conn.execute(
                insert_shipment,
                "round-id",
                packing_id(redelivered, "WH-LON", ROUND),
                redelivered,
                ROUND,
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    insert_shipment, "other-id", "another-packing-of-the-round", redelivered, ROUND
                )
        finally:
            await backorder.rollback()
    finally:
        await conn.close()


async def test_killed_after_commit_before_the_offset_ships_once(stack: Stack) -> None:
    doomed = (
        await stack.service(
            SHIPPING, failpoints="consumer.after_db_commit", shipping_simulator_enabled="false"
        )
        .start()
        .ready()
    )
    order_id = new_order_id()
    await stack.publish_messages("packing.events", [packed(order_id)])
    assert await doomed.exited() == -9  # SIGKILL, right after its first batch committed
    # only now: in the doomed one's first batch, it would ship without the simulator
    await stack.publish_messages("order.events", [placed(order_id)])

    restarted = await stack.start(SHIPPING, shipping_simulator_step_seconds="0")
    await until(stack, order_id, LABEL, DISPATCHED, TRACKING, TRACKING, TRACKING, DELIVERED)

    async def redelivered() -> bool:
        duplicates = await restarted.metric("conveyor_events_consumed_total", outcome="duplicate")
        return duplicates >= 1

    await eventually(redelivered, what="the committed batch redelivered and skipped")
    shipment = shipment_id_for(f"pack-{order_id}-WH-LON")
    assert len(await label_calls(stack, shipment)) == 1
    [sold] = await stack.query("SELECT calls FROM shipping_service.simulated_carrier_labels")
    assert sold["calls"] == 1


async def test_runs_of_records_leave_what_records_one_by_one_leave(stack: Stack) -> None:
    """Records published while the service is down come in its first poll, so each
    handler gets its records as one run, repeats included. Every order must end as the
    records one by one leave it (docs/shipping.md, "What each message does"). H and I
    are packed twice at one warehouse, for the reservation and for a backorder round."""
    a, b, c, d, e, f, g, h, i = (new_order_id() for _ in range(9))
    await ensure_topics(stack.bootstrap)  # with their partitions, before the service is up
    await publish_as_one_run(
        stack,
        "order.events",
        [
            placed(a),
            placed(b),
            placed(a),
            placed(c, country="DE"),
            placed(e),
            placed(f),
            placed(h),
        ],
    )
    await publish_as_one_run(
        stack,
        "packing.events",
        [
            packed(b),
            packed(c, "WH-BER"),
            packed(h),
            packed(c, "WH-BER"),
            packed(d),
            packed(i, "WH-NJ", boxes=1),
            packed(h, boxes=1, backorder_round=ROUND),
            packed(a, boxes=1),
            packed(i, "WH-NJ", boxes=1, backorder_round=ROUND),
        ],
    )
    # the simulator enrolls each dispatch, but its first scan is an hour away
    step = "3600"
    shipping = await stack.start(SHIPPING, shipping_simulator_step_seconds=step)
    await settled(stack, shipping, consumed=7 + 9)
    await no_run_went_again(shipping)

    dispatches: dict[str, dict[str, Any]] = {}
    for order_id, boxes in ((a, 1), (b, 2), (c, 2)):
        (_, label), (_, dispatches[order_id]) = await until(stack, order_id, LABEL, DISPATCHED)
        check_dispatch(dispatches[order_id], label, boxes)
        shipment = await shipment_row(stack, order_id)
        assert (shipment["status"], shipment["buys"], shipment["enrolled"]) == ("dispatched", 1, 1)
        assert shipment["milestones"] == ["dispatched", "label_purchased"]
    # H: one shipment per round, each label followed by its dispatch. Which round goes
    # first depends on how the first polls split the two topics (both packings may wait
    # for the placement), so the pairs are told apart by their round.
    h_events = [d for t, d in await until(stack, h, LABEL, DISPATCHED, LABEL, DISPATCHED)]
    h_pairs = {
        dispatch["backorder_round"]: (label, dispatch)
        for label, dispatch in (h_events[0:2], h_events[2:4])
    }
    assert set(h_pairs) == {None, ROUND}
    check_dispatch(h_pairs[None][1], h_pairs[None][0], 2)
    check_dispatch(h_pairs[ROUND][1], h_pairs[ROUND][0], 1)
    dispatches_of_h = h_pairs[None][1], h_pairs[ROUND][1]
    assert [(x["shipment_id"], x["backorder_round"]) for x in dispatches_of_h] == [
        (shipment_id_for(packing_id(h)), None),
        (shipment_id_for(packing_id(h, backorder_round=ROUND)), ROUND),
    ]
    assert [
        (r["backorder_round"], r["status"], r["buys"], r["enrolled"], r["milestones"])
        for r in await shipment_rows(stack, h)
    ] == [(r, "dispatched", 1, 1, ["dispatched", "label_purchased"]) for r in (None, ROUND)]
    for order_id in (d, e, f, i):
        assert await events(stack, order_id) == []
    assert (await shipment_row(stack, d))["status"] == "awaiting_order"
    assert [(r["backorder_round"], r["status"]) for r in await shipment_rows(stack, i)] == [
        (None, "awaiting_order"),
        (ROUND, "awaiting_order"),
    ]
    assert max(run_sizes(shipping, "shipping.placed_again")) == 7
    assert max(run_sizes(shipping, "shipping.packed_again")) == 9
    shipping.stop()

    # the second runs: D placed at last (its packing waited), twice, and I (both its
    # packings waited); E and F packed (they were placed), E twice; H's backorder round
    # packed again; carrier updates for A, B, C and both of H's shipments, with repeats, a
    # stale scan, and a number nobody issued
    t0 = datetime.now(UTC)
    later = add_business_days(date.fromisoformat(dispatches[b]["estimated_delivery"]), 2)

    def scan(
        order_id: str,
        event_id: str,
        status: TrackingStatus,
        at: timedelta,
        *,
        number: str | None = None,  # the master's, unless given
        estimated_delivery: date | None = None,
        of: dict[str, Any] | None = None,  # the order's dispatch, unless given
    ) -> CarrierUpdate:
        dispatch = of or dispatches[order_id]
        return CarrierUpdate(
            order_id=order_id,
            carrier=dispatch["carrier"],
            tracking_number=number or dispatch["tracking_number"],
            carrier_event_id=f"{order_id}:{event_id}",
            status=status,
            occurred_at=t0 + at,
            estimated_delivery=estimated_delivery,
        )

    hour = timedelta(hours=1)
    await publish_as_one_run(stack, "order.events", [placed(d), placed(g), placed(i), placed(d)])
    await publish_as_one_run(
        stack,
        "packing.events",
        [
            packed(e),
            packed(f, "WH-NJ", boxes=1),
            packed(h, boxes=1, backorder_round=ROUND),
            packed(e),
        ],
    )
    await publish_as_one_run(
        stack,
        "shipping.commands",
        [
            scan(a, "1", "in_transit", 0 * hour),
            scan(h, "1", "delivered", 1 * hour, of=dispatches_of_h[0]),
            scan(b, "1", "in_transit", 1 * hour),
            scan(h, "2", "in_transit", 1 * hour, of=dispatches_of_h[1]),
            scan(a, "2", "out_for_delivery", 1 * hour),
            scan(b, "2", "delayed", 2 * hour, estimated_delivery=later),
            scan(a, "3", "delivered", 2 * hour),
            scan(a, "3", "delivered", 2 * hour),  # the carrier's retry: nothing more
            scan(b, "3", "in_transit", 0 * hour),  # older than the last: status stays
            scan(a, "4", "in_transit", 3 * hour, number="NOPE123"),
            scan(
                c,
                "1",
                "delivered",
                1 * hour,
                number=dispatches[c]["packages"][0]["tracking_number"],
            ),
            scan(c, "2", "delivered", 2 * hour),  # delivered before: reported, no delivery
        ],
    )
    shipping = await stack.start(SHIPPING, shipping_simulator_step_seconds=step)
    await settled(stack, shipping, consumed=4 + 4 + 12)
    await no_run_went_again(shipping)

    found = {
        a: await until(stack, a, LABEL, DISPATCHED, TRACKING, TRACKING, TRACKING, DELIVERED),
        b: await until(stack, b, LABEL, DISPATCHED, TRACKING, TRACKING, EXCEPTION, TRACKING),
        c: await until(stack, c, LABEL, DISPATCHED, TRACKING, DELIVERED, TRACKING),
    }
    for order_id, boxes in ((d, 2), (e, 2), (f, 1)):
        (_, label), (_, dispatch) = await until(stack, order_id, LABEL, DISPATCHED)
        check_dispatch(dispatch, label, boxes)
    # each of H's shipments moved by its own scans; its backorder round packed again: nothing
    *_, (_, h_scan), (_, h_delivered), (_, h_round_scan) = await until(
        stack, h, LABEL, DISPATCHED, LABEL, DISPATCHED, TRACKING, DELIVERED, TRACKING
    )
    assert h_scan["shipment_id"] == h_delivered["shipment_id"] == dispatches_of_h[0]["shipment_id"]
    assert h_round_scan["shipment_id"] == dispatches_of_h[1]["shipment_id"]
    # I: both its packings shipped by one order.placed, each with its round
    i_rounds = [d for t, d in await until(stack, i, LABEL, DISPATCHED, LABEL, DISPATCHED)]
    for label, dispatch in ((i_rounds[0], i_rounds[1]), (i_rounds[2], i_rounds[3])):
        check_dispatch(dispatch, label, 1)
    assert {(x["shipment_id"], x["backorder_round"]) for x in i_rounds[1::2]} == {
        (shipment_id_for(packing_id(i, "WH-NJ")), None),
        (shipment_id_for(packing_id(i, "WH-NJ", ROUND)), ROUND),
    }
    assert await events(stack, g) == []
    for order_id, expected in (
        (a, ["1", "2", "3"]),
        (b, ["1", "2", "3"]),
        (c, ["1", "2"]),
    ):
        reported = [data for t, data in found[order_id] if t == TRACKING]
        assert [r["carrier_event_id"] for r in reported] == [f"{order_id}:{n}" for n in expected]
    *_, (_, delay), (_, stale) = found[b]
    assert (delay["status"], delay["estimated_delivery"]) == ("delayed", later.isoformat())
    assert (stale["status"], stale["estimated_delivery"]) == ("in_transit", later.isoformat())

    expected_rows = {
        a: ("delivered", 3, ["delivered", "dispatched", "label_purchased"], t0 + 2 * hour),
        b: ("delayed", 3, ["dispatched", "label_purchased"], t0 + 2 * hour),
        c: ("delivered", 2, ["delivered", "dispatched", "label_purchased"], t0 + 1 * hour),
        **{o: ("dispatched", 0, ["dispatched", "label_purchased"], None) for o in (d, e, f)},
    }
    for order_id, (status_, scans, milestones, last_scan_at) in expected_rows.items():
        row = await shipment_row(stack, order_id)
        assert (row["status"], row["scans"], row["milestones"]) == (status_, scans, milestones)
        assert row["last_scan_at"] == last_scan_at
        assert (row["buys"], row["enrolled"]) == (1, 1)
    assert (await shipment_row(stack, b))["estimated_delivery"] == later
    delivered_round = ("delivered", 1, ["delivered", "dispatched", "label_purchased"])
    in_transit_round = ("in_transit", 1, ["dispatched", "label_purchased"])
    dispatched_round = ("dispatched", 0, ["dispatched", "label_purchased"])
    for order_id, rounds in ((h, [delivered_round, in_transit_round]), (i, [dispatched_round] * 2)):
        rows = await shipment_rows(stack, order_id)
        assert [(r["status"], r["scans"], r["milestones"]) for r in rows] == rounds
        assert [(r["backorder_round"], r["buys"], r["enrolled"]) for r in rows] == [
            (None, 1, 1),
            (ROUND, 1, 1),
        ]
    assert max(run_sizes(shipping, "shipping.placed_again")) == 4
    assert max(run_sizes(shipping, "shipping.packed_again")) == 4
    assert max(run_sizes(shipping, "shipping.scan_again")) == 12
