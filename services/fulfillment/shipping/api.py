"""HTTP: the carriers' signed webhook, and shipment reads for staff and debugging.

``POST /carriers/{carrier}/webhook`` checks the signature over the raw body before
anything else (401), then the carrier (404), the body (422) and the tracking number
(404); a new scan is queued as a ``shipping.carrier_update`` command in one transaction
with its receipt (202), a carrier event id seen before is acknowledged and queues
nothing (200).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.fulfillment.shipping import tracking
from services.fulfillment.shipping.store import views
from services.fulfillment.shipping.webhook import CarrierScan, verify
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.schemas import Envelope
from shared.schemas.events.fulfillment import CarrierUpdate


class WebhookReceipt(BaseModel):
    result: Literal["accepted", "duplicate"]
    order_id: str
    shipment_id: str


def router(ctx: ServiceContext, *, secret: str, carriers: frozenset[str]) -> APIRouter:
    api = APIRouter(tags=["shipping"])

    @api.post(
        "/carriers/{carrier}/webhook",
        status_code=202,
        responses={
            200: {"description": "This carrier event id was accepted before: nothing queued"},
            401: {"description": "Missing or wrong X-Conveyor-Signature"},
            404: {"description": "Unknown carrier, or a tracking number it never issued us"},
            422: {"description": "The body is not a carrier scan"},
        },
    )
    async def carrier_webhook(
        carrier: str,
        request: Request,
        response: Response,
        x_conveyor_signature: Annotated[str | None, Header()] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=255)] = None,
    ) -> WebhookReceipt:
        """A carrier reports a tracking scan (body: ``CarrierScan``), signed with the
        shared secret: ``X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the body>``."""
        body = await request.body()
        if not verify(secret, body, x_conveyor_signature):
            raise HTTPException(401, "missing or invalid X-Conveyor-Signature")
        if carrier not in carriers:
            raise HTTPException(404, f"unknown carrier {carrier!r}")
        try:
            scan = CarrierScan.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        cause = Envelope(
            type=CarrierUpdate.TYPE,
            source=f"http/carrier/{carrier}",
            data=body,
            correlation_id=x_correlation_id,
        )
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema) as uow:
            outcome = await tracking.accept_webhook_scan(uow, carrier, scan, body, cause)
        if outcome.result == "unknown_tracking_number":
            raise HTTPException(404, f"unknown tracking number {scan.tracking_number!r}")
        assert outcome.order_id is not None and outcome.shipment_id is not None
        if outcome.result == "duplicate":
            response.status_code = 200
        return WebhookReceipt(
            result=outcome.result, order_id=outcome.order_id, shipment_id=outcome.shipment_id
        )

    @api.get("/shipments/{shipment_id}", responses={404: {"description": "Unknown shipment"}})
    async def get_shipment(shipment_id: str) -> views.ShipmentView:
        """A shipment: status, label, packages with tracking numbers, every carrier scan."""
        async with ctx.pool.acquire() as conn:
            found = await views.shipment(conn, shipment_id)
        if found is None:
            raise HTTPException(404, f"unknown shipment {shipment_id!r}")
        return found

    @api.get("/orders/{order_id}/shipments")
    async def order_shipments(order_id: str) -> list[views.ShipmentView]:
        """The order's shipments (one per packing), oldest first; empty if none yet."""
        async with ctx.pool.acquire() as conn:
            return await views.order_shipments(conn, order_id)

    return api
