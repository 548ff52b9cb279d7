"""The broker goes away under a running service: orders are still taken (they wait in
the outbox), the service stays up, and everything is published when a broker is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shared.runtime.infra.embedded import EmbeddedBroker
from shared.runtime.infra.stack import Infrastructure
from shared.runtime.topics import ensure_topics
from tests.factories import submission_body
from tests.integration.harness import Stack, eventually, header


async def test_outbox_holds_events_until_the_broker_is_back(
    infra: Infrastructure, stack: Stack, tmp_path: Path
) -> None:
    if infra.kind != "embedded":
        pytest.skip("stops and restarts an embedded broker on the same port")
    broker = EmbeddedBroker(tmp_path / "broker")  # this test's own, to stop and restart
    stack.bootstrap = broker.start()
    order = await stack.start("order")
    assert order.proc is not None

    broker.stop()
    try:
        async with httpx.AsyncClient(base_url=order.url) as http:
            created = await http.post("/orders", json=submission_body("OUTAGE-1"))
        assert created.status_code == 201, "intake needs only the database"

        async def waiting_in_outbox() -> bool:
            return bool(
                await stack.query("SELECT 1 FROM order_service.outbox WHERE sent_at IS NULL")
            )

        await eventually(waiting_in_outbox, what="the event to wait in the outbox")
        assert order.proc.poll() is None, "the service must ride the outage out"

        # memory only: the broker comes back empty; create the topics as start-up does
        broker.start()
        await ensure_topics(broker.bootstrap)
        [record] = await stack.wait_for_records("order.events", 1)
        assert header(record, "ce_type") == "order.placed.v1"
        assert order.proc.poll() is None
    finally:
        broker.stop()
