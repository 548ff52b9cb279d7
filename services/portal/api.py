"""The portal's JSON API: order tracking, with read-your-writes.

``GET /orders/{id}?min_version=N&wait_ms=T`` waits up to T ms until the projection has
applied version N of the order (the receipt of ``POST /orders`` gives both), so a
client never reads an older state than the one it just wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from services.portal import store
from services.portal.domain import OrderView
from shared.runtime.notify import ChangeFeed
from shared.runtime.service import ServiceContext

MAX_WAIT_MS = 30_000


class TimelineStep(BaseModel):
    version: int
    event_type: str
    status: str
    occurred_at: datetime
    reasons: list[dict[str, Any]]


class OrderTracking(BaseModel):
    order_id: str
    version: int
    status: str
    customer_id: str | None
    storefront_reference: str | None
    currency: str | None
    total_minor: int | None
    lines: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    updated_at: datetime
    timeline: list[TimelineStep]


def router(ctx: ServiceContext, feed: ChangeFeed) -> APIRouter:
    api = APIRouter(tags=["orders"])

    async def read_until(order_id: str, min_version: int, wait_ms: int) -> OrderView | None:
        async with feed.watch(order_id) as changed:
            deadline = asyncio.get_running_loop().time() + wait_ms / 1000
            while True:
                view = await store.get_view(ctx.pool, order_id)
                caught_up = view is not None and view.version >= min_version
                remaining = deadline - asyncio.get_running_loop().time()
                if caught_up or remaining <= 0:
                    return view
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
                changed.clear()

    @api.get("/orders/{order_id}", responses={404: {"description": "No such order (yet)"}})
    async def get_order(
        order_id: str,
        response: Response,
        min_version: Annotated[int, Query(ge=0, description="wait for this version")] = 0,
        wait_ms: Annotated[int, Query(ge=0, le=MAX_WAIT_MS)] = 0,
    ) -> OrderTracking:
        """An order's current status and timeline.

        With ``min_version``, waits up to ``wait_ms`` for that version; the header
        ``Conveyor-Caught-Up: false`` says the wait ran out before it was visible.
        """
        view = await read_until(order_id, min_version, wait_ms)
        if view is None:
            raise HTTPException(404, f"order {order_id} not found")
        response.headers["Conveyor-Caught-Up"] = str(view.version >= min_version).lower()
        timeline = await store.get_timeline(ctx.pool, order_id)
        return OrderTracking(
            order_id=view.order_id,
            version=view.version,
            status=view.status,
            customer_id=view.customer_id,
            storefront_reference=view.storefront_reference,
            currency=view.currency,
            total_minor=view.total_minor,
            lines=view.lines,
            reasons=view.reasons,
            updated_at=view.updated_at,
            timeline=[TimelineStep(**vars(step)) for step in timeline],
        )

    return api
