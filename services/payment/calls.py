"""Gateway calls as the handlers make them: an idempotency key derived from the causing
event, bounded retries with exponential backoff for calls that got no answer, and every
attempt with its result recorded in ``gateway_calls`` (through the handler's
:class:`~services.payment.store.PaymentWrites`, so in the handler's transaction).

The calls run inside the handler's transaction (the runtime's unit of work), holding the
locks of the payments it handles while they wait. That is acceptable because every call
is idempotent by key, and the key derives from the causing event's id: if the transaction
rolls back (crash, error), the redelivered event makes the *same* call, and the gateway
answers it from memory without a second effect. Retries are bounded, so the transaction
stays short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from prometheus_client import Counter, Histogram

from services.payment import domain
from services.payment.gateway import (
    GatewayError,
    GatewayResult,
    Operation,
    PaymentGateway,
)
from services.payment.store import PaymentWrites
from shared.runtime.external import Meters, NoAnswer, RetryPolicy, call_recorded
from shared.runtime.logging import get_logger
from shared.schemas import Envelope
from shared.schemas.common import Money

log = get_logger(__name__)

GATEWAY_CALLS = Counter(
    "conveyor_payment_gateway_calls_total",
    "Payment gateway calls (attempts), by operation and outcome (approved, refused, error)",
    ["operation", "outcome"],
)
GATEWAY_SECONDS = Histogram(
    "conveyor_payment_gateway_seconds",
    "Duration of one payment gateway call",
    ["operation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
METERS = Meters(GATEWAY_CALLS, GATEWAY_SECONDS)


@dataclass(frozen=True)
class CallOutcome:
    result: GatewayResult | None  # None: no answer after every attempt
    attempts: int
    error: str = ""  # the last gateway error, when there was no answer

    @property
    def approved(self) -> bool:
        return self.result is not None and self.result.approved

    def failure(self) -> str:
        """The ``error`` of a ``*_failed`` event: the refusal, or the last gateway error."""
        if self.result is None:
            return self.error
        return domain.failure_error(self.result.code, self.result.message)

    def reference(self) -> str:
        assert self.result is not None and self.result.reference, "approved without reference"
        return self.result.reference


class GatewayCalls:
    """The gateway, called the payment service's way."""

    def __init__(self, gateway: PaymentGateway, retry: RetryPolicy) -> None:
        self.gateway = gateway
        self.retry = retry

    async def authorize(
        self, writes: PaymentWrites, cause: Envelope, order_id: str, token: str, amount: Money
    ) -> CallOutcome:
        key = domain.idempotency_key(cause.id, "authorize")
        request = {"token": token, **amount.model_dump()}
        call = partial(self.gateway.authorize, token=token, amount=amount, idempotency_key=key)
        return await self._call(writes, cause, order_id, "authorize", key, request, call)

    async def void(
        self, writes: PaymentWrites, cause: Envelope, order_id: str, authorization: str
    ) -> CallOutcome:
        key = domain.idempotency_key(cause.id, "void")
        request = {"authorization_reference": authorization}
        call = partial(
            self.gateway.void, authorization_reference=authorization, idempotency_key=key
        )
        return await self._call(writes, cause, order_id, "void", key, request, call)

    async def capture(
        self,
        writes: PaymentWrites,
        cause: Envelope,
        order_id: str,
        authorization: str,
        amount: Money,
        *,
        requested_by_event: str,
    ) -> CallOutcome:
        # keyed by the dispatch that asked for it, also when it waited for the authorization
        key = domain.idempotency_key(requested_by_event, "capture")
        request = {"authorization_reference": authorization, **amount.model_dump()}
        call = partial(
            self.gateway.capture,
            authorization_reference=authorization,
            amount=amount,
            idempotency_key=key,
        )
        return await self._call(writes, cause, order_id, "capture", key, request, call)

    async def refund(
        self, writes: PaymentWrites, cause: Envelope, order_id: str, capture: str, amount: Money
    ) -> CallOutcome:
        key = domain.idempotency_key(cause.id, "refund")
        request = {"capture_reference": capture, **amount.model_dump()}
        call = partial(
            self.gateway.refund, capture_reference=capture, amount=amount, idempotency_key=key
        )
        return await self._call(writes, cause, order_id, "refund", key, request, call)

    async def _call(
        self,
        writes: PaymentWrites,
        cause: Envelope,
        order_id: str,
        operation: Operation,
        key: str,
        request: dict[str, Any],
        call: Callable[[], Awaitable[GatewayResult]],
    ) -> CallOutcome:
        """Call with bounded retries and backoff on ``GatewayError``; record every attempt."""

        async def record(
            *, attempt: int, answer: GatewayResult | None, error: str | None, duration_ms: float
        ) -> None:
            writes.gateway_call(
                order_id=order_id,
                operation=operation,
                idempotency_key=key,
                event_id=cause.id,
                request=request,
                attempt=attempt,
                result=answer,
                error=error,
                duration_ms=duration_ms,
            )

        try:
            answered = await call_recorded(
                call,
                operation=operation,
                no_answer=GatewayError,
                policy=self.retry,
                record=record,
                meters=METERS,
                outcome=lambda result: "approved" if result.approved else "refused",
                log_event="payment.gateway_error",
            )
        except NoAnswer as gave_up:
            log.warning("payment.gateway_gave_up", operation=operation, attempts=gave_up.attempts)
            return CallOutcome(None, gave_up.attempts, gave_up.error)
        return CallOutcome(answered.answer, answered.attempts)
