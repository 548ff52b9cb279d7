"""The handheld API: open tasks of a warehouse, one task, scans and short picks.

A confirmation runs the same path as a ``picking.confirm_pick`` command, in one unit of
work. Rejections answer with the stored receipt and its status code — 422 for a
mis-pick, 409 for a task or line that is closed, 404 for an unknown task — and the
machine-readable reason in ``error`` (``code``, ``message``, ``field``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.fulfillment.picking import domain, scans, store
from services.fulfillment.picking.domain import TaskStatus
from shared.runtime.http import answer_or_invalid
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.schemas.common import INT32_MAX, Reason, Text

Id = Annotated[Text, Field(min_length=1, max_length=200)]
Units = Annotated[int, Field(ge=0, le=INT32_MAX)]


class ScanBody(BaseModel):
    sku: Id
    location: Id
    quantity: Units = Field(description="units taken from the bin by this scan")
    picker_id: Id
    confirmation_id: Id = Field(description="chosen by the device; a retry reuses it")
    line_id: Id | None = Field(None, description="which line, if the SKU is on several")
    short: bool = Field(False, description="no more units at the bin: the rest is short")


class ShortBody(BaseModel):
    sku: Id
    picker_id: Id
    confirmation_id: Id
    found: Units = Field(0, description="units found now, besides those scanned before")
    location: Id | None = Field(None, description="defaults to the item's bin")
    line_id: Id | None = None


class ItemView(BaseModel):
    line_id: str
    sku: str
    location: str
    quantity: int
    picked: int
    remaining: int
    status: str


class TaskView(BaseModel):
    task_id: str
    order_id: str
    warehouse_id: str
    status: str
    strategy: str
    zone: str | None
    trip_id: str | None
    reservation_id: str
    created_at: datetime
    released_at: datetime | None
    items: list[ItemView]


def _view(stored: store.StoredTask) -> TaskView:
    t = stored.task
    return TaskView(
        task_id=t.task_id,
        order_id=t.order_id,
        warehouse_id=t.warehouse_id,
        status=t.status.value,
        strategy=stored.strategy,
        zone=stored.zone,
        trip_id=stored.trip_id,
        reservation_id=stored.reservation_id,
        created_at=stored.created_at,
        released_at=stored.released_at,
        items=[
            ItemView(
                line_id=i.line_id,
                sku=i.sku,
                location=i.location,
                quantity=i.quantity,
                picked=i.picked,
                remaining=i.remaining,
                status=i.status,
            )
            for i in t.items
        ],
    )


class TaskNotFound(BaseModel):
    detail: Reason


REJECTIONS: dict[int | str, dict[str, Any]] = {
    404: {"model": scans.ScanReceipt, "description": "no such task (code task_not_found)"},
    409: {"model": scans.ScanReceipt, "description": "task or line closed; id reused"},
    422: answer_or_invalid(
        scans.ScanReceipt, "mis-pick: SKU, location or quantity; or not a scan at all"
    ),
}


def router(ctx: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["picking"])

    async def confirm(task_id: str, confirmation_id: str, scan: domain.Scan) -> JSONResponse:
        request = scans.ScanRequest(confirmation_id, task_id, scan, source="handheld")
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema) as uow:
            [receipt] = await scans.confirm_scans(uow, [request], now=datetime.now(UTC))
        return JSONResponse(receipt.model_dump(mode="json"), status_code=receipt.status_code)

    @api.get("/warehouses/{warehouse_id}/tasks")
    async def warehouse_tasks(
        warehouse_id: str,
        status: Annotated[list[TaskStatus] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[TaskView]:
        """Open tasks (released or being picked) in release order; ``status`` to choose."""
        wanted = status or sorted(domain.OPEN)
        async with ctx.pool.acquire() as conn:
            found = await store.open_tasks(conn, warehouse_id, wanted, limit)
        return [_view(t) for t in found]

    @api.get("/tasks/{task_id}", responses={404: {"model": TaskNotFound}})
    async def task(task_id: str) -> TaskView:
        async with ctx.pool.acquire() as conn:
            found = await store.load_tasks(conn, [task_id])
        if task_id not in found:
            raise HTTPException(404, {"code": "task_not_found", "message": f"no task {task_id}"})
        return _view(found[task_id])

    @api.post("/tasks/{task_id}/scans", response_model=scans.ScanReceipt, responses=REJECTIONS)
    async def scan(task_id: str, body: ScanBody) -> JSONResponse:
        """Confirm units taken from a bin. ``short: true`` closes the line with what was
        found so far plus this scan; inventory allocates the missing units again (or
        backorders them)."""
        return await confirm(
            task_id,
            body.confirmation_id,
            domain.Scan(
                sku=body.sku,
                location=body.location,
                quantity=body.quantity,
                picker_id=body.picker_id,
                line_id=body.line_id,
                closes_item=body.short,
            ),
        )

    @api.post("/tasks/{task_id}/short", response_model=scans.ScanReceipt, responses=REJECTIONS)
    async def short(task_id: str, body: ShortBody) -> JSONResponse:
        """Report a line short: ``found`` more units (often 0) and no more at the bin."""
        return await confirm(
            task_id,
            body.confirmation_id,
            domain.Scan(
                sku=body.sku,
                location=body.location,
                quantity=body.found,
                picker_id=body.picker_id,
                line_id=body.line_id,
                closes_item=True,
            ),
        )

    return api
