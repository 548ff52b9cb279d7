"""Outages a service rides out without exiting: the broker coming back empty (the embedded
broker keeps everything in memory), and PostgreSQL being killed and restarted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.runtime.infra.embedded import EmbeddedBroker, EmbeddedPostgres, create_database
from shared.runtime.infra.stack import Infrastructure
from tests.factories import submission_body
from tests.integration.harness import ServiceProcess, Stack, eventually, header


@pytest.fixture
def broker(infra: Infrastructure, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """This test's own embedded broker, which the test may kill and start again."""
    if infra.kind != "embedded":
        pytest.skip("kills and restarts an embedded broker")
    found = EmbeddedBroker(tmp_path / "broker")
    found.start()
    try:
        yield found
    finally:
        found.stop()


def restart_empty(broker: EmbeddedBroker) -> None:
    """SIGKILL, then the same port again: every topic, record and offset is gone."""
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait()
    broker.start()


async def place(service: ServiceProcess, reference: str) -> str:
    async with httpx.AsyncClient(base_url=service.url) as http:
        created = await http.post("/orders", json=submission_body(reference))
    assert created.status_code == 201, created.text
    return str(created.json()["order_id"])


async def readiness(service: ServiceProcess) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=service.url) as http:
        answer = await http.get("/health/ready")
    return {"status": answer.status_code, **answer.json()}


async def placed_ids(stack: Stack) -> set[str]:
    return {
        header(r, "ce_id") or ""
        for r in await stack.read_topic("order.events")
        if header(r, "ce_type") == "order.placed.v1"
    }


async def test_a_broker_that_came_back_empty_gets_the_outbox_again(
    stack: Stack, broker: EmbeddedBroker
) -> None:
    stack.bootstrap = broker.bootstrap
    order = await stack.start("order", broker_check_interval_s="0.2")
    assert order.proc is not None
    for n in range(3):
        await place(order, f"EMPTY-{n}")
    before = await eventually(
        lambda: _at_least(stack, 3), what="three placements on the first broker"
    )

    restart_empty(broker)

    async def noticed() -> bool:
        return "broker.came_back_empty" in order.log()

    await eventually(noticed, timeout_s=60, what="the loss noticed")
    await eventually(lambda: _ready(order), timeout_s=60, what="ready again after the recovery")
    # ready only once the republish is done: everything is there at that moment
    assert await placed_ids(stack) == before, "the same events, by id: inboxes skip them"
    assert order.proc.poll() is None, "the service rides the loss out"
    await place(order, "EMPTY-after")
    await eventually(lambda: _at_least(stack, 4), what="a new order on the new broker")


async def test_a_stack_restarted_after_a_crash_republishes_at_start(
    stack: Stack, broker: EmbeddedBroker
) -> None:
    stack.bootstrap = broker.bootstrap
    order = await stack.start("order")
    await place(order, "CRASH-1")
    before = await eventually(lambda: _at_least(stack, 1), what="the placement published")

    order.kill()  # every process at once: the service, then the broker
    restart_empty(broker)
    again = await stack.start("order")
    assert await eventually(lambda: _at_least(stack, 1), what="republished at start") == before
    assert "broker.came_back_empty" in again.log()


async def test_a_postgres_restart_is_an_outage_not_an_exit(stack: Stack, tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pg" / "data", durable=False)
    postgres.start()
    try:
        create_database(postgres.url(), "outage")
        own = Stack(stack.bootstrap, postgres.url("outage"), tmp_path)
        order = await own.start("order", broker_check_interval_s="0.2")
        assert order.proc is not None
        await place(order, "PG-1")

        assert postgres.proc is not None
        postgres.proc.kill()  # SIGKILL of the postmaster
        postgres.proc.wait()
        await eventually(lambda: _not_ready(order), what="readiness 503 without the database")

        postgres.start()
        await eventually(lambda: _ready(order), timeout_s=60, what="ready again")
        assert order.proc.poll() is None, "never exited"
        await place(order, "PG-2")
        records = await own.wait_for_records("order.events", 2)
        assert {header(r, "ce_type") for r in records} == {"order.placed.v1"}
        own.stop_all()
    finally:
        postgres.stop()


async def _at_least(stack: Stack, count: int) -> set[str] | None:
    try:
        ids = await placed_ids(stack)
    except AssertionError:  # no metadata for the topic yet: the broker is coming back
        return None
    return ids if len(ids) >= count else None


async def _ready(service: ServiceProcess) -> bool:
    return (await readiness(service))["status"] == 200


async def _not_ready(service: ServiceProcess) -> bool:
    answer = await readiness(service)
    checks = answer["checks"]
    assert isinstance(checks, dict)
    return answer["status"] == 503 and checks["database"] is False
