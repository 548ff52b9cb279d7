"""Wiring of the portal: projections it maintains, its API and its change feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter

from services.portal import api, handlers, store
from shared.runtime.notify import ChangeFeed
from shared.runtime.service import ServiceContext, ServiceDefinition


def definition() -> ServiceDefinition:
    feed = ChangeFeed(store.ORDER_CHANNEL)

    def router(ctx: ServiceContext) -> APIRouter:
        return api.router(ctx, feed)

    async def listen(ctx: ServiceContext, stopping: asyncio.Event) -> None:
        await feed.listen(ctx.pool, stopping)

    return ServiceDefinition(
        name="portal",
        migrations=Path(__file__).parent / "migrations",
        handlers=dict(handlers.HANDLERS),
        router=router,
        background=[listen],
    )
