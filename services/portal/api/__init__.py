"""The portal's JSON API: one router per resource."""

from fastapi import APIRouter

from services.portal.api import inventory, orders
from shared.runtime.notify import ChangeFeed
from shared.runtime.service import ServiceContext


def router(ctx: ServiceContext, feed: ChangeFeed) -> APIRouter:
    api = APIRouter()
    api.include_router(orders.router(ctx, feed))
    api.include_router(inventory.router(ctx))
    return api
