"""The payment service on a real broker and PostgreSQL: authorize, void, capture, refund
through the sandbox gateway, with redeliveries, and the database's own invariants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from shared.runtime.topics import ensure_topics
from shared.schemas import Message
from shared.schemas.common import Money
from shared.schemas.events.fulfillment import ItemCount, ShipmentDispatched, ShippedPackage
from shared.schemas.events.order import OrderCancelled, OrderPlaced
from shared.schemas.events.payment import RefundPayment
from tests.factories import placed_event
from tests.integration.harness import ServiceProcess, Stack, data, eventually, header

TOTAL = 5000

# --- messages ---


def new_order_id() -> str:
    return str(uuid.uuid4())


def placed(order_id: str, token: str, total: int = TOTAL) -> OrderPlaced:
    return placed_event(order_id, [("MUG-BLUE", 1)], unit_price_minor=total, token=token)


def cancelled(order_id: str) -> OrderCancelled:
    return OrderCancelled(
        order_id=order_id,
        order_version=2,
        occurred_at=datetime.now(UTC),
        reasons=[],
        cancelled_by="customer",
    )


def dispatched(order_id: str, shipment_id: str = "ship-1") -> ShipmentDispatched:
    return ShipmentDispatched(
        order_id=order_id,
        occurred_at=datetime.now(UTC),
        shipment_id=shipment_id,
        carrier="dhl",
        tracking_number=f"TRK-{shipment_id}",
        warehouse_id="wh-1",
        service="standard",
        packages=[
            ShippedPackage(
                package_id="pkg-1",
                box_code="S",
                length_mm=300,
                width_mm=200,
                height_mm=100,
                weight_grams=800,
                items=[ItemCount(line_id="1", sku="MUG-BLUE", quantity=2)],
                tracking_number=f"TRK-{shipment_id}",
            )
        ],
    )


def refund(order_id: str, refund_id: str, amount_minor: int) -> RefundPayment:
    return RefundPayment(
        order_id=order_id,
        refund_id=refund_id,
        amount=Money(amount_minor=amount_minor, currency="EUR"),
        reason="damaged",
        return_id="rma-1",
        requested_by="returns",
    )


# --- waiting and reading ---


async def settled(stack: Stack, payment: ServiceProcess, consumed: int) -> None:
    """Every published record consumed, every event it caused published, none dead-lettered."""
    await stack.settled(payment, consumed)
    # a handler that kept failing would hide behind the rules that held: none may
    assert await payment.metric("conveyor_dead_letters_total") == 0, payment.log()


async def events(stack: Stack, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the order's payment events, in order."""
    records = await stack.read_topic("payment.events")
    found = [(header(r, "ce_type") or "", data(r)) for r in records]
    return [(t, d) for t, d in found if d["order_id"] == order_id]


async def types(stack: Stack, order_id: str) -> list[str]:
    return [t for t, _ in await events(stack, order_id)]


async def until(stack: Stack, order_id: str, *expected: str) -> list[tuple[str, dict[str, Any]]]:
    """Wait until the order's payment events are exactly ``expected`` (in order)."""

    assert expected, "wait for at least one event"

    async def arrived() -> list[tuple[str, dict[str, Any]]]:
        found = await events(stack, order_id)
        return found if [t for t, _ in found] == list(expected) else []

    return await eventually(arrived, what=f"{list(expected)} for order {order_id}")


async def gateway_calls(stack: Stack, order_id: str) -> list[asyncpg.Record]:
    return await stack.query(
        """SELECT operation, attempt, outcome, idempotency_key, event_id, error
             FROM payment_service.gateway_calls WHERE order_id = $1 ORDER BY id""",
        order_id,
    )


async def status(stack: Stack, order_id: str) -> str | None:
    rows = await stack.query(
        "SELECT status FROM payment_service.payments WHERE order_id = $1", order_id
    )
    return rows[0]["status"] if rows else None


async def start_payment(stack: Stack) -> ServiceProcess:
    # three quick attempts: tok_gateway_down gives up in well under a second
    return await stack.start(
        "payment",
        payment_gateway_attempts="3",
        payment_gateway_retry_initial_s="0.02",
        payment_gateway_retry_max_s="0.1",
    )


# --- tests ---


async def test_authorization_outcome_follows_the_token(stack: Stack) -> None:
    payment = await start_payment(stack)
    tokens = [
        "tok_approved",
        "tok_declined",
        "tok_insufficient_funds",
        "tok_expired",
        "tok_timeout_once",
        "tok_gateway_down",
    ]
    orders = {token: new_order_id() for token in tokens}
    ids = await stack.publish_messages(
        "order.events", [placed(orders[t], t, total=TOTAL + i) for i, t in enumerate(tokens)]
    )
    event_ids = dict(zip(tokens, ids, strict=True))
    # the approved order placed again under a new event id: still one authorization
    await stack.publish_messages("order.events", [placed(orders["tok_approved"], "tok_approved")])
    await settled(stack, payment, consumed=len(tokens) + 1)

    [(kind, approved)] = await events(stack, orders["tok_approved"])
    assert kind == "payment.authorized.v1"
    assert approved["amount"] == {"amount_minor": TOTAL, "currency": "EUR"}
    assert approved["gateway_reference"].startswith("sbx_auth_")
    assert approved["expires_at"] is not None

    for token, code in [
        ("tok_declined", "declined"),
        ("tok_insufficient_funds", "insufficient_funds"),
        ("tok_expired", "expired_card"),
    ]:
        [(kind, declined)] = await events(stack, orders[token])
        assert (kind, declined["code"]) == ("payment.declined.v1", code), token
        assert await status(stack, orders[token]) == "declined"

    # timeout once: the first call timed out, the retry (same key) authorized
    assert await types(stack, orders["tok_timeout_once"]) == ["payment.authorized.v1"]
    calls = await gateway_calls(stack, orders["tok_timeout_once"])
    key = f"{event_ids['tok_timeout_once']}:authorize"
    assert [(c["attempt"], c["outcome"], c["idempotency_key"]) for c in calls] == [
        (1, "error", key),
        (2, "approved", key),
    ]
    assert "GatewayTimeout" in calls[0]["error"]
    [ledger] = await stack.query(
        "SELECT calls FROM payment_service.sandbox_gateway_ledger WHERE idempotency_key = $1",
        key,
    )
    assert ledger["calls"] == 2

    # the gateway never answered: bounded retries, then authorization_failed
    [(kind, failed)] = await events(stack, orders["tok_gateway_down"])
    assert kind == "payment.authorization_failed.v1"
    assert failed["attempts"] == 3
    assert "GatewayTimeout" in failed["error"]
    calls = await gateway_calls(stack, orders["tok_gateway_down"])
    assert [(c["attempt"], c["outcome"]) for c in calls] == [
        (1, "error"),
        (2, "error"),
        (3, "error"),
    ]
    assert await status(stack, orders["tok_gateway_down"]) == "authorization_failed"

    authorizations = await stack.query("SELECT order_id FROM payment_service.authorizations")
    assert sorted(r["order_id"] for r in authorizations) == sorted(
        [orders["tok_approved"], orders["tok_timeout_once"]]
    )
    # every event carries the order's trace: caused by the order.placed event
    records = await stack.read_topic("payment.events")
    assert {header(r, "causation_id") for r in records} <= set(ids)


async def test_cancellation_voids_once_and_prevents_later_authorization(stack: Stack) -> None:
    payment = await start_payment(stack)
    after, racing, before, flaky = (new_order_id() for _ in range(4))

    # cancelled after the authorization: delivered twice (same ce_id), then cancelled again
    await stack.publish_messages("order.events", [placed(after, "tok_approved")])
    await stack.publish_messages("order.events", [placed(flaky, "tok_timeout_once")])
    await until(stack, after, "payment.authorized.v1")
    [cancel_id] = await stack.publish_messages("order.events", [cancelled(after)])
    await stack.publish_messages("order.events", [cancelled(after)], id=cancel_id)
    await stack.publish_messages("order.events", [cancelled(after), cancelled(flaky)])
    # placed and cancelled back to back
    await stack.publish_messages(
        "order.events", [placed(racing, "tok_approved"), cancelled(racing)]
    )
    # cancelled before the order.placed arrives
    await stack.publish_messages("order.events", [cancelled(before)])
    await settled(stack, payment, consumed=9)
    await stack.publish_messages("order.events", [placed(before, "tok_approved")])
    await settled(stack, payment, consumed=10)

    assert await types(stack, after) == ["payment.authorized.v1", "payment.voided.v1"]
    assert await payment.metric("conveyor_events_consumed_total", outcome="duplicate") == 1
    voided = (await events(stack, after))[1][1]
    assert voided["gateway_reference"].startswith("sbx_void_")
    assert [c["operation"] for c in await gateway_calls(stack, after)] == ["authorize", "void"]
    assert await status(stack, after) == "voided"

    # the void timed out once too, and was retried with the same key
    assert await types(stack, flaky) == ["payment.authorized.v1", "payment.voided.v1"]
    void_calls = [c for c in await gateway_calls(stack, flaky) if c["operation"] == "void"]
    assert [c["outcome"] for c in void_calls] == ["error", "approved"]

    # no authorization remains un-voided
    racing_types = await types(stack, racing)
    assert racing_types.count("payment.authorized.v1") == racing_types.count("payment.voided.v1")
    for order_id in (after, racing, flaky, before):
        live = await stack.query(
            """SELECT 1 FROM payment_service.authorizations
                WHERE order_id = $1 AND voided_at IS NULL""",
            order_id,
        )
        assert live == [], order_id

    # cancelled first: the later order.placed authorizes nothing, calls no gateway
    assert await types(stack, before) == []
    assert await gateway_calls(stack, before) == []
    assert await status(stack, before) == "cancelled"


async def test_dispatch_captures_once(stack: Stack) -> None:
    payment = await start_payment(stack)
    order, voided, expired, early = (new_order_id() for _ in range(4))

    await stack.publish_messages(
        "order.events",
        [
            placed(order, "tok_approved"),
            placed(voided, "tok_approved"),
            placed(expired, "tok_capture_expired"),
        ],
    )
    await stack.publish_messages("order.events", [cancelled(voided)])
    # a dispatch that arrives before its order.placed waits for the authorization
    await stack.publish_messages("shipping.events", [dispatched(early, "ship-early")])
    await settled(stack, payment, consumed=5)
    assert await types(stack, early) == []

    # the same dispatch delivered twice (same ce_id), then a second shipment
    [dispatch_id] = await stack.publish_messages("shipping.events", [dispatched(order, "ship-1")])
    await stack.publish_messages("shipping.events", [dispatched(order, "ship-1")], id=dispatch_id)
    await stack.publish_messages(
        "shipping.events",
        [dispatched(order, "ship-2"), dispatched(voided), dispatched(expired)],
    )
    await stack.publish_messages("order.events", [placed(early, "tok_approved")])
    await settled(stack, payment, consumed=11)

    found = await events(stack, order)
    assert [t for t, _ in found] == ["payment.authorized.v1", "payment.captured.v1"]
    captured = found[1][1]
    assert captured["shipment_id"] == "ship-1"
    assert captured["amount"] == {"amount_minor": TOTAL, "currency": "EUR"}
    assert captured["authorization_id"] == found[0][1]["authorization_id"]
    captures = await stack.query(
        "SELECT capture_id FROM payment_service.captures WHERE order_id = $1", order
    )
    assert [r["capture_id"] for r in captures] == [captured["capture_id"]]
    calls = [c for c in await gateway_calls(stack, order) if c["operation"] == "capture"]
    assert [(c["idempotency_key"], c["outcome"]) for c in calls] == [
        (f"{dispatch_id}:capture", "approved")
    ]

    # a voided authorization is not captured: staff are told
    assert await types(stack, voided) == [
        "payment.authorized.v1",
        "payment.voided.v1",
        "payment.capture_failed.v1",
    ]
    refused = (await events(stack, voided))[2][1]
    assert refused["error"].startswith("authorization_voided")

    # the gateway refuses the capture of an expired authorization
    [_, (kind, failed)] = await events(stack, expired)
    assert kind == "payment.capture_failed.v1"
    assert failed["error"].startswith("authorization_expired")
    assert failed["attempts"] == 1
    assert await status(stack, expired) == "capture_failed"

    # the early dispatch was captured as soon as the order was authorized
    [(_, auth), (kind, early_capture)] = await until(
        stack, early, "payment.authorized.v1", "payment.captured.v1"
    )
    assert early_capture["shipment_id"] == "ship-early"
    assert early_capture["authorization_id"] == auth["authorization_id"]
    [row] = await stack.query("SELECT count(*) AS n FROM payment_service.captures")
    assert row["n"] == 2


# --- a run of records applied at once ends as the same records one by one ---

RUN_ROLES = (
    "approved",
    "declined",
    "no_token",
    "flaky",
    "twice",
    "split",
    "down",
    "expired",
    "cancelled",
    "waiting",
)
# differ from one run to another (derived from order or event ids, or the clock)
RUN_SPECIFIC = {
    "order_id",
    "payment_id",
    "authorization_id",
    "capture_id",
    "gateway_reference",
    "occurred_at",
    "expires_at",
}

Step = tuple[str, str, Message]  # (step name, topic, message)


def run_steps(ids: dict[str, str]) -> list[Step]:
    """Authorizations and captures of several orders, some with two or three records, and
    a cancellation (handled record by record) in the middle of them. Every outcome is the
    same whichever topic's records come first, as a poll does not order topics."""
    return [
        ("approved.placed", "order.events", placed(ids["approved"], "tok_approved")),
        ("approved.dispatched", "shipping.events", dispatched(ids["approved"])),
        ("declined.placed", "order.events", placed(ids["declined"], "tok_declined")),
        (
            "no_token.placed",
            "order.events",
            placed_event(ids["no_token"], [("MUG-BLUE", 1)], token=None),
        ),
        ("flaky.placed", "order.events", placed(ids["flaky"], "tok_timeout_once")),
        ("flaky.dispatched", "shipping.events", dispatched(ids["flaky"])),
        ("twice.placed", "order.events", placed(ids["twice"], "tok_approved")),
        ("twice.placed_again", "order.events", placed(ids["twice"], "tok_approved")),
        ("split.dispatched", "shipping.events", dispatched(ids["split"], "ship-1")),
        ("split.dispatched_again", "shipping.events", dispatched(ids["split"], "ship-2")),
        ("split.placed", "order.events", placed(ids["split"], "tok_approved")),
        ("cancelled.placed", "order.events", placed(ids["cancelled"], "tok_approved")),
        ("cancelled.cancelled", "order.events", cancelled(ids["cancelled"])),
        ("down.placed", "order.events", placed(ids["down"], "tok_gateway_down")),
        ("expired.placed", "order.events", placed(ids["expired"], "tok_capture_expired")),
        ("expired.dispatched", "shipping.events", dispatched(ids["expired"])),
        ("waiting.dispatched", "shipping.events", dispatched(ids["waiting"])),
    ]


async def publish_steps(stack: Stack, steps: list[Step]) -> dict[str, str]:
    """Each topic's messages in one go, in step order; event id → step name."""
    names: dict[str, str] = {}
    for topic in ("order.events", "shipping.events"):
        mine = [(name, message) for name, on, message in steps if on == topic]
        if mine:
            ids = await stack.publish_messages(topic, [message for _, message in mine])
            names.update(zip(ids, (name for name, _ in mine), strict=True))
    return names


async def outcome(stack: Stack, ids: dict[str, str], steps: dict[str, str]) -> dict[str, Any]:
    """Per role: the payment events (with the role whose record caused each), the payment,
    authorization and capture rows, and the gateway calls, with every id that differs
    between runs replaced by the step (``steps``: event id → step name) or role."""
    role = {order_id: name for name, order_id in ids.items()}

    def role_of(event_id: str | None) -> str:
        return steps[event_id or ""].split(".")[0]

    found: dict[str, dict[str, Any]] = {
        name: {"events": [], "calls": [], "authorization": None, "capture": None} for name in ids
    }
    for record in await stack.read_topic("payment.events"):
        event = data(record)
        if event["order_id"] in role:
            kept = {k: v for k, v in event.items() if k not in RUN_SPECIFIC}
            cause = role_of(header(record, "causation_id"))
            found[role[event["order_id"]]]["events"].append(
                (header(record, "ce_type"), cause, kept)
            )
    order_ids = list(role)
    for row in await stack.query(
        """SELECT order_id, status, amount_minor, currency, decline_code, last_error,
                  pending_capture_event, pending_shipment_id,
                  order_cancelled_at IS NOT NULL AS cancelled
             FROM payment_service.payments WHERE order_id = ANY($1)""",
        order_ids,
    ):
        payment = dict(row)
        if payment["pending_capture_event"] is not None:
            payment["pending_capture_event"] = steps[payment["pending_capture_event"]]
        found[role[payment.pop("order_id")]]["payment"] = payment
    for row in await stack.query(
        """SELECT order_id, amount_minor, currency, voided_at IS NOT NULL AS voided,
                  expires_at IS NOT NULL AS expires
             FROM payment_service.authorizations WHERE order_id = ANY($1)""",
        order_ids,
    ):
        authorization = dict(row)
        found[role[authorization.pop("order_id")]]["authorization"] = authorization
    for row in await stack.query(
        """SELECT order_id, amount_minor, currency, shipment_id, refunded_minor
             FROM payment_service.captures WHERE order_id = ANY($1)""",
        order_ids,
    ):
        capture = dict(row)
        found[role[capture.pop("order_id")]]["capture"] = capture
    for row in await stack.query(
        """SELECT order_id, operation, attempt, outcome, idempotency_key, event_id, error
             FROM payment_service.gateway_calls WHERE order_id = ANY($1) ORDER BY id""",
        order_ids,
    ):
        event_id, operation = row["idempotency_key"].rsplit(":", 1)
        found[role[row["order_id"]]]["calls"].append(
            (
                row["operation"],
                row["attempt"],
                row["outcome"],
                f"{steps[event_id]}:{operation}",
                role_of(row["event_id"]),
                row["error"],
            )
        )
    return found


async def test_a_run_of_records_ends_as_the_same_records_one_by_one(stack: Stack) -> None:
    """Authorizations and captures are applied a run at a time (one locking read, one
    write per table): state, events and gateway calls must be those of one by one."""
    await ensure_topics(stack.bootstrap)
    at_once = {name: new_order_id() for name in RUN_ROLES}
    steps = run_steps(at_once)
    # published before the service starts, so that its first poll holds them all
    at_once_steps = await publish_steps(stack, steps)
    payment = await start_payment(stack)
    await settled(stack, payment, consumed=len(steps))

    one_by_one = {name: new_order_id() for name in RUN_ROLES}
    one_by_one_steps: dict[str, str] = {}
    for n, step in enumerate(run_steps(one_by_one), start=1):
        one_by_one_steps |= await publish_steps(stack, [step])
        await settled(stack, payment, consumed=len(steps) + n)

    batched = await outcome(stack, at_once, at_once_steps)
    assert batched == await outcome(stack, one_by_one, one_by_one_steps)
    assert {name: [t for t, _, _ in found["events"]] for name, found in batched.items()} == {
        "approved": ["payment.authorized.v1", "payment.captured.v1"],
        "declined": ["payment.declined.v1"],
        "no_token": ["payment.declined.v1"],
        "flaky": ["payment.authorized.v1", "payment.captured.v1"],
        "twice": ["payment.authorized.v1"],
        "split": ["payment.authorized.v1", "payment.captured.v1"],
        "down": ["payment.authorization_failed.v1"],
        "expired": ["payment.authorized.v1", "payment.capture_failed.v1"],
        "cancelled": ["payment.authorized.v1", "payment.voided.v1"],
        "waiting": [],
    }
    assert batched["split"]["capture"]["shipment_id"] == "ship-1"
    assert batched["waiting"]["payment"]["pending_capture_event"] == "waiting.dispatched"
    # all in one transaction and no savepoint (each would have its own xmin): the records
    # were applied as runs, not redone one by one after a failing run
    transactions = await stack.query(
        "SELECT DISTINCT xmin::text FROM payment_service.payments WHERE order_id = ANY($1)",
        list(at_once.values()),
    )
    assert len(transactions) == 1


async def test_refunds_never_exceed_the_capture(stack: Stack) -> None:
    payment = await start_payment(stack)
    order, uncaptured = new_order_id(), new_order_id()
    await stack.publish_messages(
        "order.events", [placed(order, "tok_approved"), placed(uncaptured, "tok_approved")]
    )
    await stack.publish_messages("shipping.events", [dispatched(order)])
    await until(stack, order, "payment.authorized.v1", "payment.captured.v1")

    await stack.publish_messages(
        "payment.commands",
        [
            refund(order, "r1", 3000),
            refund(order, "r1", 3000),  # the same refund asked again: a no-op
            refund(order, "r2", 2500),  # more than the 2000 left
            refund(order, "r3", 2000),
            refund(order, "r4", 1),  # nothing left
            refund(uncaptured, "r1", 100),
        ],
    )
    await settled(stack, payment, consumed=9)

    found = await events(stack, order)
    assert [(t, d["amount"]["amount_minor"], d.get("refund_id")) for t, d in found[2:]] == [
        ("payment.refunded.v1", 3000, "r1"),
        ("payment.refund_failed.v1", 2500, "r2"),
        ("payment.refunded.v1", 2000, "r3"),
        ("payment.refund_failed.v1", 1, "r4"),
    ]
    refunded = found[2][1]
    assert refunded["capture_id"] == found[1][1]["capture_id"]
    assert refunded["return_id"] == "rma-1"
    assert refunded["gateway_reference"].startswith("sbx_ref_")
    assert found[3][1]["error"].startswith("exceeds_refundable")
    assert found[5][1]["error"].startswith("exceeds_refundable")
    [capture] = await stack.query(
        "SELECT amount_minor, refunded_minor FROM payment_service.captures WHERE order_id = $1",
        order,
    )
    assert (capture["amount_minor"], capture["refunded_minor"]) == (TOTAL, TOTAL)
    assert await status(stack, order) == "refunded"
    refund_calls = [c for c in await gateway_calls(stack, order) if c["operation"] == "refund"]
    assert len(refund_calls) == 2  # the refused ones never reached the gateway

    [(_, _), (kind, not_captured)] = await events(stack, uncaptured)
    assert kind == "payment.refund_failed.v1"
    assert not_captured["error"].startswith("not_captured")


async def test_the_database_refuses_what_the_rules_forbid(stack: Stack) -> None:
    await start_payment(stack)
    conn = await stack.db()
    try:
        await conn.execute("SET search_path TO payment_service")
        await conn.execute(
            """INSERT INTO payments (order_id, payment_id, status, amount_minor, currency)
               VALUES ('o1', 'p1', 'captured', 1000, 'EUR'), ('o2', 'p2', 'voided', 1000, 'EUR');
               INSERT INTO authorizations (authorization_id, order_id, amount_minor, currency,
                                           gateway_reference)
               VALUES ('a1', 'o1', 1000, 'EUR', 'g-a1'), ('a2', 'o2', 1000, 'EUR', 'g-a2');
               UPDATE authorizations SET voided_at = now(), void_reference = 'g-v2'
                WHERE authorization_id = 'a2';
               INSERT INTO captures (capture_id, order_id, authorization_id, amount_minor,
                                     currency, gateway_reference)
               VALUES ('c1', 'o1', 'a1', 1000, 'EUR', 'g-c1');"""
        )
        refund_sql = """INSERT INTO refunds (order_id, refund_id, status, amount_minor, currency,
                                             capture_id, gateway_reference, requested_by)
                        VALUES ('o1', $1, 'refunded', $2, 'EUR', 'c1', $1, 'staff')"""
        await conn.execute(refund_sql, "r1", 600)
        with pytest.raises(asyncpg.CheckViolationError):  # 600 + 401 > 1000
            await conn.execute(refund_sql, "r2", 401)
        await conn.execute(refund_sql, "r3", 400)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
            await conn.execute("UPDATE refunds SET amount_minor = 1")
        with pytest.raises(asyncpg.UniqueViolationError):  # a second authorization
            await conn.execute(
                """INSERT INTO authorizations (authorization_id, order_id, amount_minor,
                                               currency, gateway_reference)
                   VALUES ('a1-bis', 'o1', 1000, 'EUR', 'g-a1-bis')"""
            )
        with pytest.raises(asyncpg.UniqueViolationError):  # a second capture
            await conn.execute(
                """INSERT INTO captures (capture_id, order_id, authorization_id, amount_minor,
                                         currency, gateway_reference)
                   VALUES ('c1-bis', 'o1', 'a1', 1000, 'EUR', 'g-c1-bis')"""
            )
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="voided"):
            await conn.execute(
                """INSERT INTO captures (capture_id, order_id, authorization_id, amount_minor,
                                         currency, gateway_reference)
                   VALUES ('c2', 'o2', 'a2', 1000, 'EUR', 'g-c2')"""
            )
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="captured"):
            await conn.execute(
                """UPDATE authorizations SET voided_at = now(), void_reference = 'g-v1'
                    WHERE authorization_id = 'a1'"""
            )
        [row] = await conn.fetch("SELECT refunded_minor FROM captures WHERE capture_id = 'c1'")
        assert row["refunded_minor"] == 1000
    finally:
        await conn.close()
