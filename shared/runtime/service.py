"""Runs a service from its declaration: migrations, topics, consumer, relay, HTTP.

A service declares only its name, handlers, migrations and (optionally) a router and
start-up hook; :func:`run` wires the rest. A part that fails (consumer, relay, watch, a
background job) is started again with back-off inside the process and readiness says so
meanwhile: a lost database or broker is an outage to ride out, not an exit. Only the HTTP
server ending takes the process down (the supervisor then restarts it).

A stop is ordered: HTTP intake, the consumer (after reading the storefront topics up to
their high-water mark) and the background jobs first; the relay last, after publishing
what their final transactions wrote.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from fastapi import APIRouter

from shared.runtime.consumer import BatchConsumer, Handler
from shared.runtime.db import create_pool, migrate, wait_for_database
from shared.runtime.http import Server, build_app
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.parts import Parts
from shared.runtime.relay import OutboxRelay
from shared.runtime.settings import Settings
from shared.runtime.topics import ensure_topics
from shared.runtime.watch import DependencyWatch
from shared.schemas import TOPICS, subscriptions

log = get_logger(__name__)


@dataclass
class ServiceContext:
    """What a service's API and hooks get: built at start-up, never at import time."""

    name: str
    schema: str
    settings: Settings
    pool: asyncpg.Pool
    # run once every part has ended (the consumer too), before the pool closes: what a
    # hook opened for the handlers to use (a simulator's own pool) closes here
    after_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    migrations: Path
    handlers: Mapping[str, Handler]
    router: Callable[[ServiceContext], APIRouter] | None = None
    background: list[Callable[[ServiceContext, asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=list
    )

    @property
    def schema(self) -> str:
        return f"{self.name}_service"  # "order" is a reserved word in SQL

    def unreachable_handlers(self) -> list[str]:
        """Handled types that arrive on no topic this service consumes (a wiring bug)."""
        delivered = {m for t in subscriptions(self.name) for m in TOPICS[t].messages}
        return sorted(set(self.handlers) - delivered)


async def prepare(definition: ServiceDefinition, settings: Settings) -> asyncpg.Pool:
    await wait_for_database(settings.database_url)
    applied = await migrate(settings.database_url, definition.schema, definition.migrations)
    if applied:
        log.info("migrations.applied", migrations=applied)
    await ensure_topics(settings.kafka_bootstrap_servers, settings.topic_partitions)
    return await create_pool(
        settings.database_url,
        definition.schema,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
    )


async def serve(definition: ServiceDefinition, settings: Settings) -> None:
    if unreachable := definition.unreachable_handlers():
        raise SystemExit(
            f"{definition.name} handles {unreachable} but consumes no topic carrying them"
        )
    pool = await prepare(definition, settings)
    ctx = ServiceContext(definition.name, definition.schema, settings, pool)
    stopping = asyncio.Event()
    consumer = BatchConsumer(
        settings=settings,
        service=definition.name,
        schema=definition.schema,
        pool=pool,
        topics=subscriptions(definition.name),
        handlers=definition.handlers,
    )
    watch: DependencyWatch
    relay = OutboxRelay(
        settings=settings,
        service=definition.name,
        schema=definition.schema,
        pool=pool,
        on_broker_lost=lambda reason: watch.broker_lost(reason),
    )
    watch = DependencyWatch(
        settings=settings, pool=pool, relay=relay, restart_consumer=consumer.restart_from_beginning
    )
    # before anything is published: a broker that came back empty since the last run
    # (a crash of the whole stack) gets the retained outbox again
    await watch.check()
    parts = Parts(stopping)

    def ready() -> dict[str, bool]:
        return {
            "consumer": consumer.started.is_set(),
            "relay": relay.started.is_set(),
            "database": watch.database_ok,
            "broker": watch.broker_ok,
            "broker_log": watch.log_whole,  # false until a republished outbox is sent
            **parts.health(),
        }

    routers = [definition.router(ctx)] if definition.router else []
    app = build_app(
        definition.name,
        ready=ready,
        info=lambda: {"relay_leading": relay.leading.is_set()},
        routers=routers,
        max_body_bytes=settings.max_body_bytes,
    )
    server = Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=3,  # open SSE streams must not hold up a stop
        )
    )

    def stop() -> None:
        if stopping.is_set():
            return
        log.info("service.stopping")
        stopping.set()
        consumer.stopping.set()
        watch.stop()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)

    first: dict[str, Callable[[], Awaitable[None]]] = {
        "consumer": consumer.run,
        "watch": watch.run,
        **{
            f"background-{i}": functools.partial(job, ctx, stopping)
            for i, job in enumerate(definition.background)
        },
    }
    http = asyncio.create_task(server.serve(), name="http")
    restarted = [
        asyncio.create_task(parts.keep_running(name, start), name=name)
        for name, start in first.items()
    ]
    relay_task = asyncio.create_task(parts.keep_running("relay", relay.run), name="relay")
    log.info("service.started", http=f"http://{settings.http_host}:{settings.http_port}")
    try:
        await asyncio.wait({http})
        http_failed = not stopping.is_set()
        stop()
        await asyncio.gather(*restarted, return_exceptions=True)
        relay.stop()  # only now: it publishes what the consumer's last batches wrote
        await relay_task
        if http_failed:
            log.error("service.http_ended", error=repr(http.exception()))
            raise SystemExit(1)
    finally:
        for close in reversed(ctx.after_stop):
            await close()
        await pool.close()
        log.info("service.stopped")


def run(definition: ServiceDefinition) -> None:
    settings = Settings(service=definition.name)
    configure_logging(definition.name, settings.log_level)
    try:
        asyncio.run(serve(definition, settings))
    except KeyboardInterrupt:
        sys.exit(130)
