"""HTTP: the carriers' signed webhook, and shipment reads for staff and debugging.

``POST /carriers/{carrier}/webhook`` refuses a body over the size limit by its
``Content-Length`` (413) and headers that cannot be a fresh signed delivery (401: missing,
or a timestamp outside the tolerance) before it reads anything; then reads at most the
limit (413), and checks the signature (401), the carrier (404), the body (422), the scan's
time (422 if in the future) and the tracking number (404). A new scan is queued as a
``shipping.carrier_update`` command in one transaction with its receipt (202); a message
id or carrier event id seen before is acknowledged and queues nothing (200).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.fulfillment.shipping import tracking
from services.fulfillment.shipping.domain.shipment import from_the_future
from services.fulfillment.shipping.store import views
from services.fulfillment.shipping.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CarrierScan,
    Refused,
    Verifier,
)
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.schemas import Envelope
from shared.schemas.events.fulfillment import CarrierUpdate


class WebhookReceipt(BaseModel):
    result: Literal["accepted", "duplicate"]
    order_id: str
    shipment_id: str


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the body is over {limit} bytes")


def declared_over(request: Request, limit: int) -> bool:
    """Whether the request's ``Content-Length`` already says it is too large."""
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > limit


async def read_at_most(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as more than ``limit`` bytes have come."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


def router(
    ctx: ServiceContext,
    *,
    verifier: Verifier,
    carriers: frozenset[str],
    max_body_bytes: int,
    clock_skew: timedelta,
) -> APIRouter:
    api = APIRouter(tags=["shipping"])
    # a replay is refused by its timestamp after the tolerance; receipts are kept as long
    # again, so that instances whose clocks differ a little agree
    keep_receipts = timedelta(seconds=2 * verifier.tolerance_s)

    @api.post(
        "/carriers/{carrier}/webhook",
        status_code=202,
        responses={
            200: {"description": "This message or carrier event id was accepted before"},
            401: {"description": "Not signed, wrongly signed, or a timestamp out of tolerance"},
            404: {"description": "Unknown carrier, or a tracking number it never issued us"},
            413: {"description": f"The body is over the size limit ({max_body_bytes} bytes)"},
            422: {"description": "The body is not a carrier scan, or is dated in the future"},
        },
    )
    async def carrier_webhook(
        carrier: str,
        request: Request,
        response: Response,
        webhook_id: Annotated[str | None, Header()] = None,
        webhook_timestamp: Annotated[str | None, Header()] = None,
        webhook_signature: Annotated[str | None, Header()] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=255)] = None,
    ) -> WebhookReceipt:
        """A carrier reports a tracking scan (body: ``CarrierScan``), signed as Standard
        Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
        ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
        several space-separated during a secret rotation)."""
        if declared_over(request, max_body_bytes):
            raise too_large(max_body_bytes)  # before anything is read
        signed = {
            ID_HEADER: webhook_id,
            TIMESTAMP_HEADER: webhook_timestamp,
            SIGNATURE_HEADER: webhook_signature,
        }
        try:
            delivery = verifier.check_headers(signed)
            body = await read_at_most(request, max_body_bytes)
            verifier.check_body(delivery, body)
        except Refused as exc:
            raise HTTPException(401, str(exc)) from None
        if carrier not in carriers:
            raise HTTPException(404, f"unknown carrier {carrier!r}")
        try:
            scan = CarrierScan.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        now = datetime.now(UTC)
        if from_the_future(scan.occurred_at, now, clock_skew):
            future = f"{scan.occurred_at.isoformat()} is in the future"
            # the shape of every other 422 (HTTPValidationError), as documented
            error = {"type": "value_error", "loc": ("body", "occurred_at"), "msg": future}
            raise RequestValidationError([error])
        cause = Envelope(
            type=CarrierUpdate.TYPE,
            source=f"http/carrier/{carrier}",
            data=body,
            correlation_id=x_correlation_id,
        )
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema) as uow:
            outcome = await tracking.accept_webhook_scan(
                uow, carrier, scan, body, cause, delivery, purge_signed_before=now - keep_receipts
            )
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
