"""Inventory visibility: available-to-promise per SKU and per warehouse."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from services.portal import domain, store
from shared.runtime.http import error_response
from shared.runtime.service import ServiceContext


class WarehouseStock(BaseModel):
    sku: str
    warehouse_id: str
    available: int
    on_hand: int
    reserved: int
    safety_stock: int
    backorderable: bool
    next_restock_date: date | None
    updated_at: datetime


class SkuAvailability(BaseModel):
    sku: str
    available: int
    on_hand: int
    reserved: int
    backorderable: bool
    next_restock_date: date | None
    warehouses: list[WarehouseStock]


class WarehousePage(BaseModel):
    warehouse_id: str
    stock: list[WarehouseStock]
    next_cursor: str | None


def router(ctx: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["inventory"])

    @api.get("/inventory/{sku}", responses={404: error_response("Unknown SKU")})
    async def sku_availability(sku: str) -> SkuAvailability:
        """Available to promise in total and per warehouse, with backorder and restock dates."""
        positions = await store.positions_for_sku(ctx.pool, sku)
        if not positions:
            raise HTTPException(404, f"no stock known for SKU {sku}")
        return SkuAvailability.model_validate(
            domain.summarize(sku, positions), from_attributes=True
        )

    @api.get("/inventory")
    async def warehouse_stock(
        warehouse: str,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> WarehousePage:
        """Every SKU's position in one warehouse, by SKU, a page at a time."""
        positions = await store.positions_in_warehouse(
            ctx.pool, warehouse, limit=limit, after_sku=cursor
        )
        next_cursor = positions[-1].sku if len(positions) == limit else None
        return WarehousePage(
            warehouse_id=warehouse,
            stock=[WarehouseStock.model_validate(p, from_attributes=True) for p in positions],
            next_cursor=next_cursor,
        )

    return api
