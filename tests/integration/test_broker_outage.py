"""The broker becomes unreachable under a running service: orders are still taken (they
wait in the outbox), the service stays up, and everything is published once the network
is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.runtime.infra.embedded import EmbeddedBroker, free_port
from shared.runtime.infra.stack import Infrastructure
from shared.runtime.topics import ensure_topics
from tests.factories import submission_body
from tests.integration.harness import Stack, eventually, header
from tests.integration.netproxy import NetworkProxy


@pytest.fixture
def proxy(infra: Infrastructure, tmp_path: Path) -> Iterator[NetworkProxy]:
    """This test's own broker, reachable only through a proxy that the test can cut."""
    if infra.kind != "embedded":
        pytest.skip("needs a broker whose advertised address points at the proxy")
    broker_port = free_port("127.0.0.1")
    proxy = NetworkProxy(broker_port).start()
    broker = EmbeddedBroker(tmp_path / "broker", port=broker_port, advertised_port=proxy.port)
    broker.start()
    try:
        yield proxy
    finally:
        proxy.close()
        broker.stop()


async def test_outbox_holds_events_until_the_broker_is_back(
    stack: Stack, proxy: NetworkProxy
) -> None:
    stack.bootstrap = proxy.address
    await ensure_topics(proxy.address)
    order = await stack.start("order", relay_publish_timeout_s="2")
    assert order.proc is not None

    proxy.cut()
    async with httpx.AsyncClient(base_url=order.url) as http:
        created = await http.post("/orders", json=submission_body("OUTAGE-1"))
    assert created.status_code == 201, "intake needs only the database"

    async def publish_failing() -> bool:
        unsent = await stack.query("SELECT 1 FROM order_service.outbox WHERE sent_at IS NULL")
        return bool(unsent) and "relay.publish_retry" in order.log()

    await eventually(publish_failing, what="the relay to retry while the event waits")
    assert order.proc.poll() is None, "the service must ride the outage out"

    proxy.restore()
    records = await stack.wait_for_records("order.events", 1)
    # At least once: a publish the broker took while the cut swallowed its ack goes again
    # when the relay retries, as the same event (same ce_id), which inboxes skip.
    assert {header(r, "ce_type") for r in records} == {"order.placed.v1"}
    assert len({header(r, "ce_id") for r in records}) == 1
    assert order.proc.poll() is None
