"""Wiring of the risk service: a faust-streaming worker over ``order.events``.

Everything is built at call time (no connections at import). The worker:

1. creates the registry topics (``ensure_topics``) — faust itself may declare none;
2. rebuilds the in-memory windows by replaying ``order.events`` up to the group's
   committed offsets (:func:`rebuild_state`);
3. runs one faust agent (concurrency 1) that assesses each ``order.placed.v1`` and publishes
   ``risk.assessed.v1`` on ``risk.events``, awaiting the broker's ack before moving on, so
   faust commits an offset only after its assessment was published;
4. serves ``/health/live``, ``/health/ready`` and ``/metrics`` on ``CONVEYOR_HTTP_PORT``.

Why no faust ``Table``: see docs/risk.md ("What Tansu forced").
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import mode
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.exceptions import NotReady
from prometheus_client import Counter, Gauge
from pydantic import Field

from services.risk import domain, handlers
from services.risk.domain import RiskState, Thresholds
from services.risk.handlers import CONSUMES, SERVICE, Outgoing, Record
from shared.runtime.http import Server, build_app
from shared.runtime.logging import get_logger
from shared.runtime.metrics import DEAD_LETTERS, EVENTS_CONSUMED, RETRIES
from shared.runtime.settings import Settings
from shared.schemas import TOPICS, PoisonMessage

log = get_logger(__name__)

ASSESSMENTS = Counter(
    "conveyor_risk_assessments_total", "Risk assessments published, by verdict", ["verdict"]
)
# the stack's state directory, as `conveyor up` and `make run` use it (cwd-relative)
STATE_DIR = Path(".conveyor")
REBUILD_STALL_S = 30.0  # give up the replay (state stays partial) after this long without data

WINDOW_ORDERS = Gauge("conveyor_risk_window_orders", "Orders held in the in-memory windows")


class RiskSettings(Settings):
    """``CONVEYOR_*`` settings plus the risk rules' thresholds (``CONVEYOR_RISK_*``)."""

    service: str = SERVICE
    risk_window_s: float = domain.DEFAULT_WINDOW.total_seconds()
    risk_grace_s: float = domain.DEFAULT_GRACE.total_seconds()
    risk_velocity_review: int = domain.DEFAULT_VELOCITY_REVIEW
    risk_velocity_reject: int = domain.DEFAULT_VELOCITY_REJECT
    # JSON objects in the environment, e.g. CONVEYOR_RISK_ORDER_LIMITS_MINOR='{"EUR": 150000}'
    risk_order_limits_minor: dict[str, int] = Field(
        default_factory=lambda: dict(domain.DEFAULT_ORDER_LIMITS_MINOR)
    )
    risk_spend_limits_minor: dict[str, int] = Field(
        default_factory=lambda: dict(domain.DEFAULT_SPEND_LIMITS_MINOR)
    )
    # replay at start-up: records older than this (record timestamp) are skipped; 0 = off
    risk_rebuild_lookback_s: float = 24 * 3600
    # faust's data directory (it creates one even with the in-memory store); unset: one
    # per broker and instance under the stack's state directory (see datadir())
    risk_datadir: Path | None = None
    risk_commit_interval_s: float = 1.0

    def datadir(self) -> Path:
        """``CONVEYOR_RISK_DATADIR``, else ``.conveyor/risk/<group instance>-<broker hash>``
        in the working directory: two stacks (two brokers) or two instances never share one."""
        if self.risk_datadir is not None:
            return self.risk_datadir
        broker = hashlib.sha256(self.kafka_bootstrap_servers.encode()).hexdigest()[:10]
        return STATE_DIR / "risk" / f"{self.group_instance_id}-{broker}"

    def thresholds(self) -> Thresholds:
        return Thresholds(
            window=timedelta(seconds=self.risk_window_s),
            grace=timedelta(seconds=self.risk_grace_s),
            velocity_review=self.risk_velocity_review,
            velocity_reject=self.risk_velocity_reject,
            order_limits_minor=dict(self.risk_order_limits_minor),
            spend_limits_minor=dict(self.risk_spend_limits_minor),
        )


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


class Health:
    """What ``/health/ready`` reports: state rebuilt, app started, partitions assigned."""

    def __init__(self) -> None:
        self.rebuilt = False
        self.started = False
        self.app: faust.App | None = None

    def checks(self) -> dict[str, bool]:
        app = self.app
        try:
            assigned = bool(app is not None and app.consumer.assignment())
        except NotReady:  # asked before faust started its consumer: not ready, not a 500
            assigned = False
        return {
            "state_rebuilt": self.rebuilt,
            "worker_started": self.started,
            "partitions_assigned": assigned,
            "not_rebalancing": app is not None and not app.rebalancing,
        }


def create_app(settings: RiskSettings, state: RiskState, health: Health) -> faust.App:
    """The faust app: one agent over ``order.events``, no tables, no topic declarations."""
    settings.datadir().parent.mkdir(parents=True, exist_ok=True)  # faust makes only the leaf
    app = faust.App(
        SERVICE,  # the consumer group id
        broker=broker_urls(settings.kafka_bootstrap_servers),
        autodiscover=False,
        datadir=str(settings.datadir()),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        # topics come from the registry (ensure_topics); faust must never create one
        topic_allow_declare=False,
        topic_disable_leader=True,  # else it creates "risk-__assignor-__leader"
        topic_partitions=TOPICS[handlers.PRODUCES].partitions,
        # Tansu: no idempotent producer (faust asks for one only in exactly_once mode)
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=settings.linger_ms / 1000,
        consumer_auto_offset_reset="earliest",
        # Tansu rebalances slowly: static membership, short session, 1 s heartbeat
        consumer_group_instance_id=settings.group_instance_id,
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        broker_max_poll_records=settings.max_poll_records,
        broker_commit_interval=settings.risk_commit_interval_s,
        web_enabled=False,  # our own /health and /metrics (HttpService)
    )
    health.app = app
    source = app.topic(CONSUMES, key_serializer="raw", value_serializer="raw")
    sinks = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw")
        for name in (handlers.PRODUCES, handlers.DEAD_LETTERS)
    }

    async def publish(out: Outgoing) -> None:
        """Send and wait for the ack; retry with backoff while the broker is unreachable."""
        delay = settings.retry_initial_s
        while True:
            try:
                sent = await sinks[out.topic].send(
                    key=out.key, value=out.value, headers=out.headers
                )
                await sent
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                RETRIES.labels(service=SERVICE, kind="transient").inc()
                log.warning("risk.publish_failed", topic=out.topic, error=repr(exc), retry_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, settings.retry_max_s)

    async def process(record: Record) -> None:
        try:
            out = handlers.handle(
                state, record, datetime.now(UTC), max_bytes=settings.max_record_bytes
            )
        except Exception as exc:  # a bug in the rules: dead-letter, never stall the partition
            log.exception("risk.handler_failed", offset=record.offset, partition=record.partition)
            out = handlers.dead_letter(record, _HandlerFailed(repr(exc)), datetime.now(UTC))
        if out is None:
            EVENTS_CONSUMED.labels(service=SERVICE, topic=record.topic, outcome="ignored").inc()
            return
        await publish(out)
        EVENTS_CONSUMED.labels(service=SERVICE, topic=record.topic, outcome=out.outcome).inc()
        if out.problem is not None:
            DEAD_LETTERS.labels(service=SERVICE, reason=out.problem.reason).inc()
            log.warning(
                "risk.dead_lettered",
                reason=out.problem.reason,
                detail=out.problem.detail,
                partition=record.partition,
                offset=record.offset,
            )
        elif out.assessment is not None and out.envelope is not None:
            ASSESSMENTS.labels(verdict=out.assessment.verdict).inc()
            WINDOW_ORDERS.set(state.orders)
            log.info(
                "risk.assessed",
                order_id=out.assessment.order_id,
                customer_id=out.assessment.customer_id,
                verdict=out.assessment.verdict,
                score=out.assessment.score,
                reasons=[r.code for r in out.assessment.reasons],
                orders_in_window=out.assessment.stats.orders,
                event_id=out.envelope.id,
                causation_id=out.envelope.causation_id,
                correlation_id=out.envelope.correlation_id,
            )

    # concurrency 1: faust can commit past in-flight events with more (faust issue 606)
    @app.agent(source, name="risk.assess", concurrency=1)
    async def assess(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await process(
                Record.of(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                )
            )

    @app.task
    async def started() -> None:  # runs once the app is fully started
        health.started = True
        while True:  # then say once when it is consuming (no signal to wait on)
            if all(health.checks().values()):
                break
            await asyncio.sleep(0.05)
        partitions = sorted(tp.partition for tp in app.consumer.assignment())
        log.info("risk.ready", partitions=partitions, orders_in_windows=state.orders)

    return app


class _HandlerFailed(PoisonMessage):
    reason = "handler_failed"


class HttpService(mode.Service):
    """``/health/live``, ``/health/ready`` and ``/metrics`` inside the faust worker."""

    def __init__(
        self, settings: RiskSettings, ready: Callable[[], dict[str, bool]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.ready = ready
        self.server: Server | None = None
        self.serving: asyncio.Future[None] | None = None
        self.failed = False

    async def on_start(self) -> None:
        config = uvicorn.Config(
            build_app(
                SERVICE,
                ready=self.ready,
                routers=[],
                max_body_bytes=self.settings.max_body_bytes,
            ),
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
        )
        self.server = Server(config)
        self.serving = self.add_future(self._serve(self.server))

    async def _serve(self, server: Server) -> None:
        try:
            await server.serve()
        except (Exception, SystemExit) as exc:  # uvicorn exits when it cannot bind
            self.failed = True
            log.error("risk.http_failed", error=repr(exc))
            await self.crash(RuntimeError(f"HTTP server failed: {exc!r}"))
            return
        if not server.should_exit:
            self.failed = True
            await self.crash(RuntimeError("HTTP server stopped"))

    async def on_stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.serving is not None:  # let uvicorn finish before mode cancels its futures
            await asyncio.wait({self.serving}, timeout=5)


async def rebuild_state(settings: RiskSettings, state: RiskState) -> int:
    """Replay ``order.events`` up to the group's committed offsets into ``state``.

    The agent then continues from those offsets, so every order is counted once (the
    windows are keyed by order id anyway). Records older than the lookback (by record
    timestamp) are skipped without parsing. Returns the number of orders replayed.
    """
    if settings.risk_rebuild_lookback_s <= 0:
        return 0
    tps = [TopicPartition(CONSUMES, p) for p in range(TOPICS[CONSUMES].partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=SERVICE,  # only to read its committed offsets: assign() never joins
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.max_poll_records,
    )
    await consumer.start()
    replayed = 0
    started = time.monotonic()
    try:
        consumer.assign(tps)
        ends: dict[TopicPartition, int] = {}
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed:
                ends[tp] = committed
        if not ends:
            return 0
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        oldest_ms = (time.time() - settings.risk_rebuild_lookback_s) * 1000
        pending = dict(ends)
        progressed = time.monotonic()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            if batch:
                progressed = time.monotonic()
            elif time.monotonic() - progressed > REBUILD_STALL_S:
                log.warning(
                    "risk.rebuild_incomplete",
                    missing={tp.partition: o for tp, o in pending.items()},
                )
                break
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp] or r.timestamp < oldest_ms:
                        continue
                    record = Record.of(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        key=r.key,
                        value=r.value,
                        headers=r.headers,
                    )
                    try:
                        found = handlers.read_order_placed(record)
                    except PoisonMessage:
                        continue  # the agent dead-lettered it the first time
                    if found is not None:
                        state.record(handlers.facts_from(found[1]))
                        replayed += 1
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    del pending[tp]
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    state.prune()
    WINDOW_ORDERS.set(state.orders)
    log.info(
        "risk.rebuilt",
        orders_replayed=replayed,
        orders_in_windows=state.orders,
        customers=state.customers,
        up_to={tp.partition: offset for tp, offset in ends.items()},
        seconds=round(time.monotonic() - started, 3),
    )
    return replayed
