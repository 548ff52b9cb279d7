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

        # the same reference with another body is refused, with or without a key
        other = submission_body("HTTP-3", shipping_minor=0, total_minor=4500)
        for headers in ({}, {"Idempotency-Key": "key-5"}):
            conflict = await intake.post("/orders", json=other, headers=headers)
            assert conflict.status_code == 409, conflict.text
            assert conflict.json()["detail"]["code"] == "reference_conflict"
        assert reused.json()["detail"]["code"] == "idempotency_key_reused"

    rows = await stack.query("SELECT storefront_reference FROM order_service.orders ORDER BY 1")
    assert [r["storefront_reference"] for r in rows] == ["HTTP-2", "HTTP-3"]
    keys = await stack.query("SELECT key FROM order_service.idempotency_keys ORDER BY 1")
    assert [k["key"] for k in keys] == ["key-3"]


async def test_input_postgresql_cannot_store_is_refused_not_a_server_error(stack: Stack) -> None:
    order = await stack.start("order")
    customer = {"customer_id": "cust-1", "email": "ada@example.com", "name": "A\x00da"}
    unstorable = [
        submission_body("NUL\x00REF"),
        submission_body("HTTP-NUL-1", customer=customer),
        submission_body("HTTP-NUL-2", currency="EU\x00"),
        submission_body("HTTP-BIG", total_minor=2**63),
    ]
    huge = [{"sku": "MUG-BLUE", "quantity": 99_999_999_999, "unit_price_minor": 1}]
    async with httpx.AsyncClient(base_url=order.url) as intake:
        for body in unstorable:
            refused = await intake.post("/orders", json=body)
            assert refused.status_code == 422, refused.text
            assert isinstance(refused.json()["detail"], list)  # not an order: not recorded
        rejected = await intake.post("/orders", json=submission_body("HTTP-QTY", lines=huge))
        assert rejected.status_code == 422
        assert [r["code"] for r in rejected.json()["reasons"]] == ["quantity_too_large"]
        in_url = await intake.post("/orders?x=%00", json=submission_body("HTTP-URL"))
        assert in_url.status_code == 422
    rows = await stack.query("SELECT storefront_reference FROM order_service.orders")
    assert [r["storefront_reference"] for r in rows] == ["HTTP-QTY"]


async def test_a_body_over_the_limit_is_refused(stack: Stack) -> None:
    order = await stack.start("order", max_body_bytes="4096")
    customer = {"customer_id": "c", "email": "a@b.co", "name": "x" * 5000}
    async with httpx.AsyncClient(base_url=order.url) as intake:
        large = await intake.post("/orders", json=submission_body("HTTP-L", customer=customer))
        assert large.status_code == 413
        fits = await intake.post("/orders", json=submission_body("HTTP-SMALL"))
        assert fits.status_code == 201


async def test_the_stream_of_an_unknown_order_is_404_like_the_order(stack: Stack) -> None:
    portal = await stack.start("portal")
    async with httpx.AsyncClient(base_url=portal.url, timeout=5) as reads:
        for order_id in ("1b9e3c0e-0000-5000-8000-000000000000", "not-a-uuid"):
            plain = await reads.get(f"/orders/{order_id}")
            stream = await reads.get(f"/orders/{order_id}/stream")
            assert (plain.status_code, stream.status_code) == (404, 404)
