"""The carrier webhook's defences, on the running shipping service: Standard Webhooks
timestamps within the tolerance, scans from the future, replays of a message, the receipts'
purge, secret rotation, and bodies refused by size before they are read."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from services.fulfillment.shipping.app import DEV_WEBHOOK_SECRET
from services.fulfillment.shipping.webhook import SIGNATURE_HEADER
from tests.integration.harness import ServiceProcess, Stack, eventually
from tests.integration.test_shipping import (
    DISPATCHED,
    LABEL,
    OTHER_SECRET,
    SHIPPING,
    TRACKING,
    new_order_id,
    packed,
    placed,
    scan_body,
    settled,
    signed,
    until,
)

LIMIT = 64 * 1024  # CONVEYOR_SHIPPING_WEBHOOK_MAX_BODY_BYTES' default
TOLERANCE_S = 300  # CONVEYOR_SHIPPING_WEBHOOK_TOLERANCE_S' default


async def dispatched(stack: Stack) -> tuple[ServiceProcess, str, dict[str, Any]]:
    """Shipping without its simulated carrier, and one dispatched shipment."""
    shipping = await stack.start(SHIPPING, shipping_simulator_enabled="false")
    order_id = new_order_id()
    await stack.publish_messages("order.events", [placed(order_id)])
    await stack.publish_messages("packing.events", [packed(order_id)])
    _, (_, dispatch) = await until(stack, order_id, LABEL, DISPATCHED)
    return shipping, order_id, dispatch


async def receipts(stack: Stack) -> dict[str, Any]:
    rows = await stack.query(
        "SELECT webhook_id, carrier_event_id, signed_at FROM shipping_service.webhook_receipts"
    )
    return {r["carrier_event_id"]: r for r in rows}


async def commands(stack: Stack) -> list[str]:
    """The carrier event ids of the scans queued so far."""
    records = await stack.read_topic("shipping.commands")
    return [json.loads(r.value or b"{}")["carrier_event_id"] for r in records]


async def test_timestamps_future_scans_replays_rotation_and_purge(stack: Stack) -> None:
    shipping, order_id, dispatch = await dispatched(stack)
    url = f"/carriers/{dispatch['carrier']}/webhook"
    master = dispatch["tracking_number"]
    now = int(time.time())

    async with httpx.AsyncClient(base_url=shipping.url) as http:

        async def post(body: bytes, headers: dict[str, str]) -> int:
            return (await http.post(url, content=body, headers=headers)).status_code

        first = scan_body(master, "evt-1", "in_transit")
        # missing, old, future or malformed timestamps: refused, however well signed
        assert await post(first, {"Content-Type": "application/json"}) == 401
        for stale in (now - TOLERANCE_S - 60, now + TOLERANCE_S + 60, 4070908800):
            assert await post(first, signed(first, timestamp=stale)) == 401, stale
        malformed = {**signed(first), "webhook-timestamp": f"{now}.5"}
        assert await post(first, malformed) == 401
        # the old scheme is not accepted any more
        assert await post(first, {"X-Conveyor-Signature": "sha256=" + "0" * 64}) == 401

        # signed now, but the scan is dated in 2099: refused, nothing stored or queued
        future = scan_body(master, "evt-2099", "in_transit", occurred_at="2099-01-01T00:00:00Z")
        answer = await http.post(url, content=future, headers=signed(future))
        assert answer.status_code == 422
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", "occurred_at"] and "in the future" in error["msg"]
        assert await receipts(stack) == {} and await commands(stack) == []
        soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()  # within the skew
        near = scan_body(master, "evt-near", "in_transit", occurred_at=soon)
        assert await post(near, signed(near)) == 202

        # a carrier rotating its secret signs with both; the old one alone fails
        rotated = signed(first, OTHER_SECRET, DEV_WEBHOOK_SECRET)
        assert len(rotated[SIGNATURE_HEADER].split()) == 2
        assert await post(first, signed(first, OTHER_SECRET)) == 401
        accepted = await http.post(url, content=first, headers=rotated)
        assert accepted.status_code == 202, accepted.text

        # the same message again, within the tolerance: acknowledged, no second effect
        replay = await http.post(url, content=first, headers=rotated)
        assert replay.status_code == 200 and replay.json()["result"] == "duplicate"
        # its webhook-id reused for another scan: still that message, nothing queued
        other = scan_body(master, "evt-other", "delivered")
        reused = signed(other, msg_id=rotated["webhook-id"])
        assert await post(other, reused) == 200
        assert await commands(stack) == ["evt-near", "evt-1"]
        held = await receipts(stack)
        assert held["evt-1"]["webhook_id"] == rotated["webhook-id"]
        signed_at = held["evt-1"]["signed_at"].timestamp()
        assert signed_at == int(rotated["webhook-timestamp"])

        # receipts signed longer ago than twice the tolerance go with the next call
        await stack.query(
            """UPDATE shipping_service.webhook_receipts
                  SET signed_at = signed_at - make_interval(secs => $1)""",
            2.0 * TOLERANCE_S + 1,
        )
        later = scan_body(master, "evt-later", "out_for_delivery")
        assert await post(later, signed(later)) == 202
        assert set(await receipts(stack)) == {"evt-later"}

        # the first scan sent again after its receipt went: its scan is recorded, so it
        # is still a duplicate
        await eventually(lambda: scan_recorded(stack, "evt-1"), what="evt-1 recorded")
        assert (await http.post(url, content=first, headers=signed(first))).json() == {
            "result": "duplicate",
            "order_id": order_id,
            "shipment_id": dispatch["shipment_id"],
        }

    assert await commands(stack) == ["evt-near", "evt-1", "evt-later"]
    await settled(stack, shipping, consumed=2 + 3)
    await until(stack, order_id, LABEL, DISPATCHED, TRACKING, TRACKING, TRACKING)


async def scan_recorded(stack: Stack, carrier_event_id: str) -> bool:
    rows = await stack.query(
        "SELECT 1 FROM shipping_service.tracking_scans WHERE carrier_event_id = $1",
        carrier_event_id,
    )
    return bool(rows)


async def answer_to(shipping: ServiceProcess, head: str, body: bytes = b"") -> int:
    """Send the request's head and the start of its body, never the rest, and return the
    status the service answers with: it can only come if nothing more was awaited."""
    address = urlsplit(shipping.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=10)
        return int(line.split()[1])
    finally:
        writer.close()


async def test_bodies_are_refused_by_size_before_they_are_read(stack: Stack) -> None:
    shipping, _, dispatch = await dispatched(stack)
    path = f"/carriers/{dispatch['carrier']}/webhook"
    host = urlsplit(shipping.url).netloc
    fresh = signed(b"a body we never send in full")
    signing = "".join(f"{k}: {v}\n" for k, v in fresh.items())

    # 20 MiB announced, unsigned: 413 before a byte of it arrives
    huge = f"POST {path} HTTP/1.1\nHost: {host}\nContent-Length: {20 * 2**20}\n"
    assert await answer_to(shipping, huge, b"{") == 413
    # announced within the limit but unsigned: 401 without waiting for the body
    small = f"POST {path} HTTP/1.1\nHost: {host}\nContent-Length: 1000\n"
    assert await answer_to(shipping, small) == 401
    # no length announced (chunked): 413 once more than the limit has come, not at the end
    chunk = b"x" * 8192
    chunks = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (LIMIT // len(chunk) + 1)
    streamed = f"POST {path} HTTP/1.1\nHost: {host}\nTransfer-Encoding: chunked\n{signing}"
    assert await answer_to(shipping, streamed, chunks) == 413

    # a body at the limit is read and judged on its signature
    async with httpx.AsyncClient(base_url=shipping.url) as http:
        at_limit = b" " * LIMIT
        answer = await http.post(path, content=at_limit, headers=signed(at_limit))
        assert answer.status_code == 422  # signed, read, not a scan
        over = b" " * (LIMIT + 1)
        assert (await http.post(path, content=over, headers=signed(over))).status_code == 413
