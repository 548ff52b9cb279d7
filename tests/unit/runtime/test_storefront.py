"""publish_orders reports a send only once the broker acknowledged it (no broker here)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from shared.runtime import storefront
from shared.runtime.storefront import _acked, order_body

Sent = list[tuple[dict[str, Any], float]]


def recorder() -> tuple[Sent, Any]:
    sent: Sent = []
    return sent, lambda body, at: sent.append((body, at))


async def test_an_acknowledged_send_is_reported() -> None:
    sent, on_sent = recorder()
    ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack.set_result("metadata")

    _acked(on_sent, {"n": 1}, 12.5, ack)

    assert sent == [({"n": 1}, 12.5)]


async def test_a_failed_send_is_not_reported_as_sent() -> None:
    sent, on_sent = recorder()
    ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack.set_exception(KafkaTimeoutError())

    _acked(on_sent, {"n": 1}, 12.5, ack)

    assert sent == []


async def test_a_cancelled_send_is_not_reported_as_sent() -> None:
    sent, on_sent = recorder()
    ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ack.cancel()

    _acked(on_sent, {"n": 1}, 12.5, ack)

    assert sent == []


class FakeProducer:
    """Acknowledges every send except the references in ``failing``."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.stopped = False

    def __call__(self, **_: Any) -> FakeProducer:  # stands in for the class
        return self

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, *, value: bytes, key: bytes, headers: Any) -> Any:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        reference = key.decode()
        if reference in self.failing:
            asyncio.get_running_loop().call_soon(ack.set_exception, KafkaTimeoutError())
        else:
            asyncio.get_running_loop().call_soon(ack.set_result, "metadata")
        return ack


async def test_publish_orders_reports_only_acknowledged_sends_and_raises_the_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(1)
    bodies = [order_body(n, rng, run_id="t") for n in range(4)]
    failing = {bodies[1]["storefront_reference"], bodies[3]["storefront_reference"]}
    producer = FakeProducer(failing)
    monkeypatch.setattr(storefront, "AIOKafkaProducer", producer)
    sent, on_sent = recorder()

    with pytest.raises(KafkaTimeoutError) as raised:
        await storefront.publish_orders("fake:9092", bodies, rate=0, on_sent=on_sent)

    assert [body["storefront_reference"] for body, _ in sent] == [
        bodies[0]["storefront_reference"],
        bodies[2]["storefront_reference"],
    ]
    assert "2 of 4 sends failed" in (raised.value.__notes__ or [])
    assert producer.stopped
