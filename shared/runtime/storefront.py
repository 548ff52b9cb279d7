"""A simulated storefront: realistic ``order.submit.v1`` bodies, published at a steady
rate through a real Kafka producer — what `conveyor simulate`, the fault test and the
benchmark drive the stack with. Deterministic for a given seed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.runtime.client import Outgoing
from shared.schemas import model_for

SUBMIT = "order.submit.v1"


@dataclass(frozen=True)
class Product:
    sku: str
    unit_price_minor: int


# SKUs that the demo seed stocks in every warehouse region
DEMO_PRODUCTS = (
    Product("MUG-BLUE", 1250),
    Product("TEE-M", 1800),
    Product("TEE-M-BLACK", 2000),
    Product("TEE-L-BLACK", 2000),
)
ADDRESSES = (
    {"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
     "postal_code": "SW1Y 4JH", "country": "GB"},
    {"name": "Emmy Noether", "line1": "Unter den Linden 6", "city": "Berlin",
     "postal_code": "10117", "country": "DE"},
    {"name": "Grace Hopper", "line1": "1 Main St", "city": "Newark", "region": "NJ",
     "postal_code": "07102", "country": "US"},
)  # fmt: skip
SERVICE_LEVELS = ("standard", "standard", "standard", "express", "overnight")


def order_body(
    n: int,
    rng: random.Random,
    *,
    storefront_id: str = "sim-store",
    run_id: str = "run",
    products: Sequence[Product] = DEMO_PRODUCTS,
    decline_share: float = 0.0,
) -> dict[str, Any]:
    """Order ``n`` of a run: 1 to 3 lines, a customer of a few hundred, a paying card."""
    picked = rng.sample(list(products), k=rng.randint(1, min(3, len(products))))
    quantities = [rng.randint(1, 2) for _ in picked]
    lines = [
        {"sku": p.sku, "quantity": q, "unit_price_minor": p.unit_price_minor}
        for p, q in zip(picked, quantities, strict=True)
    ]
    shipping = 495
    subtotal = sum(q * p.unit_price_minor for p, q in zip(picked, quantities, strict=True))
    address = rng.choice(ADDRESSES)
    customer = f"sim-cust-{rng.randint(1, 500)}"
    token = "tok_declined" if rng.random() < decline_share else "tok_approved"
    return {
        "storefront_id": storefront_id,
        "storefront_reference": f"{run_id}-{n:07d}",
        "customer": {"customer_id": customer, "email": f"{customer}@example.com",
                     "name": address["name"]},
        "lines": lines,
        "currency": "EUR",
        "shipping_address": address,
        "shipping_minor": shipping,
        "total_minor": subtotal + shipping,
        "service_level": rng.choice(SERVICE_LEVELS),
        "payment": {"method": "card", "token": token},
    }  # fmt: skip


async def publish_orders(
    bootstrap: str,
    bodies: Sequence[dict[str, Any]],
    *,
    rate: float,
    on_sent: Callable[[dict[str, Any], float], None] = lambda body, at: None,
) -> None:
    """Publish at ``rate`` orders/s (0 = as fast as possible), keyed by reference.

    Sends are paced against a start time, not with sleeps between sends, so the rate
    holds however long each send takes; ``on_sent`` gets the body and its send time
    (``time.monotonic()``) once the broker acknowledged it, and never for a send that
    failed or was cancelled. Every send is waited for; if any failed, the first failure
    is raised at the end, with a note of how many failed.
    """
    model = model_for(SUBMIT)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    try:
        start = time.monotonic()
        pending: list[asyncio.Future[Any]] = []
        for i, body in enumerate(bodies):
            if rate > 0 and (delay := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            message = model.model_validate(body)
            outgoing = Outgoing.of(message, source=f"storefront/{body['storefront_id']}")
            sent_at = time.monotonic()
            ack = await outgoing.send(producer)
            ack.add_done_callback(partial(_acked, on_sent, body, sent_at))
            pending.append(ack)
        results = await asyncio.gather(*pending, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            first.add_note(f"{len(failures)} of {len(pending)} sends failed")
            raise first
    finally:
        await producer.stop()


def _acked(
    on_sent: Callable[[dict[str, Any], float], None],
    body: dict[str, Any],
    sent_at: float,
    ack: asyncio.Future[Any],
) -> None:
    """``on_sent`` for an acknowledged send only: a failed or cancelled one was not sent."""
    if ack.cancelled() or ack.exception() is not None:
        return
    on_sent(body, sent_at)
