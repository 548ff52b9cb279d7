"""The payment service's hot handler calls the gateway for several orders at once, each
order's records in turn, and emits in the run's order. The store is left out (the
payments are handed in, the writes are not flushed); the integration tests cover it."""

from __future__ import annotations

import asyncio

import pytest

from services.payment import handlers
from services.payment.domain import Payment
from services.payment.gateway import GatewayResult
from services.payment.store import PaymentWrites
from shared.runtime.consumer import Batched
from shared.runtime.external import RetryPolicy
from shared.schemas import Envelope, Message
from shared.schemas.common import Money
from shared.schemas.events.order import OrderPlaced
from tests.factories import placed_event


class BothOrdersAtOnce:
    """A gateway that answers an authorization only once both orders have asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.both_asked = asyncio.Event()

    async def authorize(self, *, token: str, amount: Money, idempotency_key: str) -> GatewayResult:
        self.asked.append(idempotency_key)
        if len(self.asked) == 2:
            self.both_asked.set()
        await self.both_asked.wait()
        return GatewayResult(approved=True, reference=f"ref-{idempotency_key}")


class Outbox:
    conn = None

    def __init__(self) -> None:
        self.emitted: list[tuple[str, str]] = []

    async def emit(self, message: Message, *, cause: Envelope | None = None) -> None:
        self.emitted.append((message.TYPE, message.order_id))  # type: ignore[attr-defined]


def placed(order_id: str) -> tuple[OrderPlaced, Envelope]:
    envelope = Envelope(type=OrderPlaced.TYPE, source="test", data=b"")
    return placed_event(order_id, [("MUG", 1)]), envelope


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    async def lock_payments(_uow: object, order_ids: set[str]) -> dict[str, Payment]:
        return {order_id: Payment.new(order_id) for order_id in order_ids}

    async def flush(_self: PaymentWrites, _conn: object) -> None:
        return None

    monkeypatch.setattr(handlers, "_lock_payments", lock_payments)
    monkeypatch.setattr(PaymentWrites, "flush", flush)


@pytest.mark.usefixtures("no_store")
async def test_two_orders_are_authorized_at_once_and_emitted_in_run_order() -> None:
    gateway = BothOrdersAtOnce()
    hot = handlers.build(gateway, RetryPolicy(attempts=1), at_once=8)  # type: ignore[arg-type]
    apply = hot[OrderPlaced.TYPE]
    assert isinstance(apply, Batched)
    outbox = Outbox()
    run = [placed("o-2"), placed("o-1")]

    # one order at a time, the first authorization would wait for the second forever
    await asyncio.wait_for(apply.apply(outbox, run), 5.0)  # type: ignore[arg-type]

    assert outbox.emitted == [("payment.authorized.v1", "o-2"), ("payment.authorized.v1", "o-1")]
