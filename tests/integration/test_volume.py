"""1,000 orders plus 100 resubmissions, over Kafka and HTTP: each order exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.factories import submission, submission_body
from tests.integration.harness import Stack, data, eventually, header

ORDERS = 1000
RESUBMISSIONS = 100
HTTP_SHARE = 10  # every 10th order arrives over HTTP
REJECT_EVERY = 7  # every 7th order has a wrong total and must be rejected


def body(n: int) -> dict[str, object]:
    return submission_body(f"VOL-{n}", total_minor=5000 if n % REJECT_EVERY else 1)


async def test_thousand_orders_with_resubmissions(stack: Stack) -> None:
    order = await stack.start("order")
    portal = await stack.start("portal")
    over_http = [n for n in range(ORDERS) if n % HTTP_SHARE == 0]
    over_kafka = [n for n in range(ORDERS) if n % HTTP_SHARE]
    resubmitted = list(range(0, ORDERS, ORDERS // RESUBMISSIONS))

    await stack.publish_messages("order.commands", [submission(**_ref(n)) for n in over_kafka])
    async with httpx.AsyncClient(base_url=order.url, timeout=30) as http:
        statuses = await asyncio.gather(
            *(
                http.post("/orders", json=body(n), headers={"Idempotency-Key": f"k-{n}"})
                for n in over_http
            )
        )
        assert Counter(r.status_code for r in statuses) == Counter(
            201 if n % REJECT_EVERY else 422 for n in over_http
        )
        # half the resubmissions over HTTP (no key: the storefront reference decides) …
        again = await asyncio.gather(
            *(http.post("/orders", json=body(n)) for n in resubmitted[::2])
        )
        assert all(r.json()["resubmission"] for r in again)
    # … and half over Kafka, as new records with new ce_ids
    await stack.publish_messages(
        "order.commands", [submission(**_ref(n)) for n in resubmitted[1::2]]
    )

    events = await stack.wait_for_records("order.events", ORDERS, timeout_s=120)

    async def projected() -> bool:
        rows = await stack.query("SELECT count(*) AS n FROM portal_service.orders")
        return rows[0]["n"] == ORDERS

    await eventually(projected, timeout_s=120, what=f"{ORDERS} projection rows")

    async def consumed_everything() -> bool:
        consumed = await order.metric("conveyor_events_consumed_total", topic="order.commands")
        return consumed == len(over_kafka) + len(resubmitted[1::2])

    await eventually(consumed_everything, what="every Kafka submission consumed")
    events = await stack.read_topic("order.events")
    assert len(events) == ORDERS
    assert len({header(e, "ce_id") for e in events}) == ORDERS
    by_order = Counter(data(e)["order_id"] for e in events)
    assert len(by_order) == ORDERS and set(by_order.values()) == {1}
    types = Counter(header(e, "ce_type") for e in events)
    rejected = len([n for n in range(ORDERS) if n % REJECT_EVERY == 0])
    assert types == {"order.placed.v1": ORDERS - rejected, "order.rejected.v1": rejected}

    rows = await stack.query(
        "SELECT status, count(*) AS n FROM portal_service.orders GROUP BY status"
    )
    assert {r["status"]: r["n"] for r in rows} == {
        "placed": ORDERS - rejected,
        "rejected": rejected,
    }
    timeline = await stack.query("SELECT count(*) AS n FROM portal_service.order_timeline")
    assert timeline[0]["n"] == ORDERS
    assert await portal.metric("conveyor_dead_letters_total") == 0
    assert await order.metric("conveyor_dead_letters_total") == 0


def _ref(n: int) -> dict[str, object]:
    return {"reference": f"VOL-{n}", "total_minor": 5000 if n % REJECT_EVERY else 1}
