"""Storefront HTTP intake and the portal's read-your-writes, over real HTTP."""

from __future__ import annotations

import httpx

from tests.factories import submission_body
from tests.integration.harness import Stack


async def test_post_then_read_your_write(stack: Stack) -> None:
    order = await stack.start("order")
    portal = await stack.start("portal")
    async with (
        httpx.AsyncClient(base_url=order.url) as intake,
        httpx.AsyncClient(base_url=portal.url) as reads,
    ):
        created = await intake.post("/orders", json=submission_body("HTTP-1"))
        assert created.status_code == 201
        receipt = created.json()
        assert receipt["status"] == "placed" and receipt["resubmission"] is False

        seen = await reads.get(receipt["track"])
        assert seen.status_code == 200
        assert seen.headers["Conveyor-Caught-Up"] == "true"
        view = seen.json()
        assert view["status"] == "placed" and view["version"] == receipt["order_version"]
        assert view["total_minor"] == 5000 and len(view["lines"]) == 2
        assert [step["event_type"] for step in view["timeline"]] == ["order.placed.v1"]

        # a version that does not exist yet: the wait runs out and says so
        ahead = await reads.get(
            f"/orders/{receipt['order_id']}", params={"min_version": 2, "wait_ms": 200}
        )
        assert ahead.status_code == 200 and ahead.headers["Conveyor-Caught-Up"] == "false"

        unknown = await reads.get("/orders/no-such-order")
        assert unknown.status_code == 404


async def test_rejection_idempotency_and_bad_input(stack: Stack) -> None:
    order = await stack.start("order")
    async with httpx.AsyncClient(base_url=order.url) as intake:
        rejected = await intake.post("/orders", json=submission_body("HTTP-2", currency="ZZZ"))
        assert rejected.status_code == 422
        assert [r["code"] for r in rejected.json()["reasons"]] == ["invalid_currency"]

        key = {"Idempotency-Key": "key-3"}
        first = await intake.post("/orders", json=submission_body("HTTP-3"), headers=key)
        replay = await intake.post("/orders", json=submission_body("HTTP-3"), headers=key)
        assert (first.status_code, replay.status_code) == (201, 200)
        assert first.json()["order_id"] == replay.json()["order_id"]
        assert replay.json()["resubmission"] is True

        reused = await intake.post("/orders", json=submission_body("HTTP-4"), headers=key)
        assert reused.status_code == 409

        malformed = await intake.post("/orders", json={"storefront_id": "x"})
        assert malformed.status_code == 422 and "detail" in malformed.json()

    rows = await stack.query("SELECT storefront_reference FROM order_service.orders ORDER BY 1")
    assert [r["storefront_reference"] for r in rows] == ["HTTP-2", "HTTP-3"]
