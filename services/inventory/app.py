"""Wiring of the inventory service: its handlers, migrations and start-up seeding."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.inventory import handlers, seed
from shared.runtime.consumer import Batched, Handler, RecordHandler
from shared.runtime.logging import get_logger
from shared.runtime.service import ServiceContext, ServiceDefinition
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message

log = get_logger(__name__)


def definition(seed_path: Path = seed.DEFAULT_SEED) -> ServiceDefinition:
    catalog_ready = asyncio.Event()

    async def seed_once(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        """An empty catalog gets the default seed (what a newcomer expects), once; then
        this job idles until the service stops."""
        async with ctx.pool.acquire() as conn:
            loaded = await seed.seed_if_empty(conn, seed_path)
        log.info("inventory.catalog_ready", seeded_from=str(seed_path) if loaded else None)
        catalog_ready.set()
        await stopping.wait()

    def after_seeding(handler: Handler) -> Handler:
        # the consumer may start before the seed is in: an order must not fail for that
        if isinstance(handler, Batched):
            apply_run = handler.apply

            async def apply(uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
                await catalog_ready.wait()
                await apply_run(uow, events)

            return Batched(apply)
        apply_one: RecordHandler = handler

        async def run(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
            await catalog_ready.wait()
            await apply_one(uow, message, envelope)

        return run

    # one wrapper per handler: the runtime keeps a run going only while its records map
    # to the same Batched object
    wrapped = {handler: after_seeding(handler) for handler in set(handlers.HANDLERS.values())}
    routed: Mapping[str, Handler] = {
        type_: wrapped[handler] for type_, handler in handlers.HANDLERS.items()
    }
    return ServiceDefinition(
        name="inventory",
        migrations=Path(__file__).parent / "migrations",
        handlers=routed,
        background=[seed_once],
    )
