"""Carrier calls as the handlers make them: bounded retries with backoff for calls that
got no answer, and every attempt with its result recorded in ``carrier_calls`` in the
handler's transaction (queued with the run's other writes).

The calls run inside that transaction. That is safe because the only call with an
effect, buying a label, is idempotent by a key derived from the packing: if the
transaction rolls back (a crash, a database error), the redelivered ``packing.packed``
asks again with the same key and the carrier hands back the first label. When the carrier
never answers, :class:`CarrierUnavailable` is raised: the runtime retries the record with
backoff, then dead-letters it for a re-drive (those attempts roll back with it, and are
in the logs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

from services.fulfillment.shipping.carrier import CarrierAdapter, CarrierError, Label, LabelRequest
from services.fulfillment.shipping.domain.shopping import Quote
from services.fulfillment.shipping.store import carrier as store
from services.fulfillment.shipping.store.shipments import ShipmentRow
from shared.runtime.external import Meters, NoAnswer, RetryPolicy, call_recorded
from shared.runtime.logging import get_logger
from shared.runtime.writes import Writes
from shared.schemas import Envelope

log = get_logger(__name__)
T = TypeVar("T")

CARRIER_CALLS = Counter(
    "conveyor_shipping_carrier_calls_total",
    "Carrier calls (attempts), by operation and outcome (answered, error)",
    ["operation", "outcome"],
)
CARRIER_SECONDS = Histogram(
    "conveyor_shipping_carrier_seconds",
    "Duration of one carrier call",
    ["operation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
METERS = Meters(CARRIER_CALLS, CARRIER_SECONDS)


class CarrierUnavailable(Exception):
    """The carrier did not answer after every attempt."""


class CarrierCalls:
    def __init__(self, carrier: CarrierAdapter, retry: RetryPolicy) -> None:
        self.carrier = carrier
        self.retry = retry

    async def rates(
        self,
        writes: Writes,
        cause: Envelope,
        shipment: ShipmentRow,
        request: LabelRequest,
    ) -> list[Quote]:
        return await self._call(
            writes,
            cause,
            shipment,
            operation="rates",
            key=None,
            request=request.to_json(),
            call=partial(self.carrier.rates, request),
            to_json=lambda found: [_quote_json(q) for q in found],
        )

    async def buy_label(
        self,
        writes: Writes,
        cause: Envelope,
        shipment: ShipmentRow,
        request: LabelRequest,
        quote: Quote,
        key: str,
    ) -> Label:
        return await self._call(
            writes,
            cause,
            shipment,
            operation="buy_label",
            key=key,
            request={"quote": _quote_json(quote), **request.to_json()},
            call=partial(self.carrier.buy_label, request, quote, idempotency_key=key),
            to_json=Label.to_json,
        )

    async def _call(
        self,
        writes: Writes,
        cause: Envelope,
        shipment: ShipmentRow,
        *,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        call: Callable[[], Awaitable[T]],
        to_json: Callable[[T], Any],
    ) -> T:
        async def record(
            *, attempt: int, answer: T | None, error: str | None, duration_ms: float
        ) -> None:
            store.record_call(
                writes,
                order_id=shipment.order_id,
                shipment_id=shipment.shipment_id,
                operation=operation,
                idempotency_key=key,
                event_id=cause.id,
                request=request,
                attempt=attempt,
                response=None if answer is None else to_json(answer),
                error=error,
                duration_ms=duration_ms,
            )

        try:
            answered = await call_recorded(
                call,
                operation=operation,
                no_answer=CarrierError,
                policy=self.retry,
                record=record,
                meters=METERS,
                log_event="shipping.carrier_error",
            )
        except NoAnswer as exc:
            raise CarrierUnavailable(
                f"{operation}: no answer from the carrier: {exc.error}"
            ) from exc
        return answered.answer


def _quote_json(quote: Quote) -> dict[str, Any]:
    return {
        "carrier": quote.carrier,
        "service": quote.service,
        "cost": quote.cost.model_dump(),
        "transit_days": quote.transit_days,
        "estimated_delivery": quote.estimated_delivery.isoformat(),
    }
