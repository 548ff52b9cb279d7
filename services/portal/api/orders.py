"""Order tracking: one order, a customer's orders, a live stream, cancellation.

Read-your-writes: ``GET /orders/{id}?min_version=N&wait_ms=T`` waits up to T ms until
the projection has applied version N of the order (``POST /orders`` and
``POST /orders/{id}/cancel`` return the path to call), woken by PostgreSQL NOTIFY.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from services.portal import store
from services.portal.domain import OrderView
from shared.runtime.http import error_response
from shared.runtime.notify import ChangeFeed
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.schemas.common import Text
from shared.schemas.events.order import CancelOrder

MAX_WAIT_MS = 30_000
CANCELLABLE = frozenset({"placed", "awaiting_review", "confirmed"})


class TimelineStep(BaseModel):
    event_type: str
    occurred_at: datetime
    status: str | None
    version: int | None
    reasons: list[dict[str, Any]]
    detail: dict[str, Any]


class OrderSummary(BaseModel):
    order_id: str
    version: int
    status: str
    payment_status: str
    stock_status: str
    currency: str | None
    total_minor: int | None
    placed_at: datetime | None
    updated_at: datetime


class OrderTracking(OrderSummary):
    customer_id: str | None
    storefront_reference: str | None
    lines: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    reservations: list[dict[str, Any]] = Field(description="units held per warehouse")
    backordered: list[dict[str, Any]]
    expected_ship_date: date | None
    estimated_delivery: date | None = Field(description="the latest of the shipments' dates")
    picking: list[dict[str, Any]] = Field(description="pick tasks per warehouse (and zone)")
    packages: list[dict[str, Any]] = Field(description="boxes with dimensions and contents")
    shipments: list[dict[str, Any]] = Field(
        description="carrier, tracking numbers, last scan, estimated delivery"
    )
    timeline: list[TimelineStep]


class OrderPage(BaseModel):
    orders: list[OrderSummary]
    next_cursor: str | None


class CancelRequest(BaseModel):
    customer_id: Text
    reason: Text = ""


class CancelAccepted(BaseModel):
    order_id: str
    track: str = Field(description="waits until the cancellation is visible (or refused)")


def summary(view: OrderView) -> OrderSummary:
    return OrderSummary.model_validate(view, from_attributes=True)


def router(ctx: ServiceContext, feed: ChangeFeed) -> APIRouter:
    api = APIRouter(tags=["orders"])

    async def tracking(view: OrderView) -> OrderTracking:
        timeline = await store.get_timeline(ctx.pool, view.order_id)
        return OrderTracking(
            **summary(view).model_dump(),
            customer_id=view.customer_id,
            storefront_reference=view.storefront_reference,
            lines=view.lines,
            reasons=view.reasons,
            reservations=view.reservations,
            backordered=view.backordered,
            expected_ship_date=view.expected_ship_date,
            estimated_delivery=view.estimated_delivery,
            picking=view.picking,
            packages=view.packages,
            shipments=view.shipments,
            timeline=[TimelineStep.model_validate(s, from_attributes=True) for s in timeline],
        )

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

    @api.get(
        "/orders/{order_id}",
        responses={404: error_response("No such order (yet)")},
    )
    async def get_order(
        order_id: str,
        response: Response,
        min_version: Annotated[int, Query(ge=0, description="wait for this version")] = 0,
        wait_ms: Annotated[int, Query(ge=0, le=MAX_WAIT_MS)] = 0,
    ) -> OrderTracking:
        """An order's status, payment, reservations and timeline.

        With ``min_version``, waits up to ``wait_ms`` for that version; the header
        ``Conveyor-Caught-Up: false`` says the wait ran out before it was visible.
        """
        view = await read_until(order_id, min_version, wait_ms)
        if view is None:
            raise HTTPException(404, f"order {order_id} not found")
        response.headers["Conveyor-Caught-Up"] = str(view.version >= min_version).lower()
        return await tracking(view)

    async def known_order(order_id: str) -> OrderView:
        view = await store.get_view(ctx.pool, order_id)
        if view is None:
            raise HTTPException(404, f"order {order_id} not found")
        return view

    @api.get(
        "/orders/{order_id}/stream",
        response_class=EventSourceResponse,
        responses={404: error_response("No such order (yet)")},
    )
    async def stream_order(
        order_id: str,
        first: OrderView = Depends(known_order),  # a closure: Annotated cannot name it
    ) -> AsyncIterable[ServerSentEvent]:
        """Server-sent events: the order now, then again at every change (event ``order``).
        An order the portal has not seen is ``404`` at once, as ``GET /orders/{id}``."""
        shown: tuple[int, datetime] | None = None
        async with feed.watch(order_id) as changed:
            view: OrderView | None = first
            while True:
                if view is not None and (view.version, view.updated_at) != shown:
                    shown = (view.version, view.updated_at)
                    body = await tracking(view)
                    yield ServerSentEvent(data=body, event="order", id=str(view.version))
                await changed.wait()
                changed.clear()
                view = await store.get_view(ctx.pool, order_id)

    @api.get("/customers/{customer_id}/orders")
    async def customer_orders(
        customer_id: str,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> OrderPage:
        """A customer's orders, newest first, a page at a time."""
        after = _decode_cursor(cursor) if cursor else None
        views = await store.customer_orders(ctx.pool, customer_id, limit=limit, after=after)
        last = views[-1] if len(views) == limit else None
        next_cursor = _encode_cursor(last) if last and last.placed_at else None
        return OrderPage(orders=[summary(v) for v in views], next_cursor=next_cursor)

    @api.post(
        "/orders/{order_id}/cancel",
        status_code=202,
        responses={
            404: error_response("No such order"),
            409: error_response("Too late"),
        },
    )
    async def cancel_order(order_id: str, body: CancelRequest) -> CancelAccepted:
        """Ask to cancel (allowed until picking starts); the order service decides."""
        view = await store.get_view(ctx.pool, order_id)
        if view is None or view.customer_id != body.customer_id:
            raise HTTPException(404, f"order {order_id} not found")
        if view.status not in CANCELLABLE:
            raise HTTPException(409, f"an order that is {view.status} cannot be cancelled")
        request = CancelOrder(
            order_id=order_id,
            requested_by="customer",
            actor_id=body.customer_id,
            reason=body.reason,
        )
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema) as uow:
            await uow.emit(request)
        return CancelAccepted(
            order_id=order_id,
            track=f"/orders/{order_id}?min_version={view.version + 1}&wait_ms=5000",
        )

    return api


def _encode_cursor(view: OrderView) -> str:
    assert view.placed_at is not None
    raw = f"{view.placed_at.isoformat()}|{view.order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        placed_at, order_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(placed_at), order_id
    except ValueError as exc:
        error = {
            "type": "value_error",
            "loc": ["query", "cursor"],
            "msg": "cursor is not a next_cursor this API returned",
            "input": cursor,
        }
        raise RequestValidationError([error]) from exc
