"""The loss window of the embedded broker: how long, and how many, storefront records sit
acknowledged on ``order.commands`` before the order service has committed them.

The embedded broker keeps records in memory only. A record the broker has acknowledged is
safe once the order service has committed it (its inbox row, the order and the outgoing
events, in one PostgreSQL transaction); until then a broker crash loses it. Per record:

- **ack → inbox**: from the moment the producer got the broker's ack (wall clock) to the
  order service's inbox row (``received_at``, PostgreSQL's ``now()``: the start of the
  transaction that commits it, so a lower bound of the commit, by that transaction's
  length);
- **ack → first event out**: to the timestamp of the first ``order.events`` record the
  order service produced for it (``causation_id`` = the command's ``ce_id``; the relay
  sends only after the commit, so an upper bound of the commit);
- **records exposed**: at each ack, how many acknowledged records were not yet in the
  inbox; beside it the order service's own gauge ``conveyor_consumer_lag`` on
  ``order.commands``, sampled (set at each offset commit from the last fetch's
  high-watermark).

Same machine, same clock: the producer's ``time.time()``, PostgreSQL's ``now()`` and the
relay's record timestamps are comparable to within the clock's resolution.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.runtime.client import Outgoing
from shared.schemas import model_for
from tests.integration.harness import ServiceProcess, Stack, header


@dataclass
class Published:
    """Each record's ce_id → the wall time its ack arrived."""

    acked: dict[str, float] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0

    @property
    def rate(self) -> float:
        span = self.last - self.first
        return (len(self.acked) - 1) / span if span > 0 else 0.0


async def publish_timed(bootstrap: str, bodies: list[dict[str, Any]], rate: float) -> Published:
    """Publish ``order.submit.v1`` at ``rate``/s as a storefront does (acks=all), paced
    against a start time; note the wall time each ack arrived."""
    model = model_for("order.submit.v1")
    out = Published()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()

    def acked(event_id: str, _future: asyncio.Future[Any]) -> None:
        out.acked[event_id] = time.time()

    try:
        start = time.monotonic()
        pending = []
        for i, body in enumerate(bodies):
            if (delay := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            outgoing = Outgoing.of(
                model.model_validate(body), source=f"storefront/{body['storefront_id']}"
            )
            future = await outgoing.send(producer)
            future.add_done_callback(partial(acked, outgoing.event_id))
            pending.append(future)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    out.first, out.last = min(out.acked.values()), max(out.acked.values())
    return out


class LagSampler:
    """The order service's ``conveyor_consumer_lag`` on order.commands, every ``every_s``."""

    def __init__(self, order: ServiceProcess, every_s: float = 0.2) -> None:
        self.order = order
        self.every_s = every_s
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples

    async def _run(self) -> None:
        while True:
            lag = await self.order.metric(
                "conveyor_consumer_lag", service="order", topic="order.commands"
            )
            self.samples.append(lag)
            await asyncio.sleep(self.every_s)


async def committed_at(stack: Stack, ids: list[str], timeout_s: float = 300) -> dict[str, float]:
    """Each id's inbox ``received_at`` (wall seconds), once every id is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await stack.query(
            """SELECT event_id, extract(epoch FROM received_at)::float8 AS at
               FROM order_service.inbox WHERE topic = 'order.commands'
               AND event_id = ANY($1::text[])""",
            ids,
        )
        if len(rows) == len(ids) or time.monotonic() > deadline:
            return {r["event_id"]: r["at"] for r in rows}
        await asyncio.sleep(0.5)


async def first_event_out(stack: Stack, ids: set[str]) -> dict[str, float]:
    """Per command ce_id, the timestamp of the first order.events record it caused."""
    out: dict[str, float] = {}
    for record in await stack.read_topic("order.events"):
        cause = header(record, "causation_id")
        if cause in ids:
            at = record.timestamp / 1000
            out[cause] = min(at, out.get(cause, at))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "max": round(ordered[-1], 1)}


def delays_ms(acked: dict[str, float], seen: dict[str, float]) -> dict[str, float]:
    return percentiles([(seen[e] - at) * 1000 for e, at in acked.items() if e in seen])


def exposed_at_each_ack(acked: dict[str, float], committed: dict[str, float]) -> list[float]:
    """At each ack: records acknowledged so far minus records already in the inbox."""
    acks = sorted(acked.values())
    commits = sorted(committed.values())
    return [float(i + 1 - bisect.bisect_right(commits, at)) for i, at in enumerate(acks)]
