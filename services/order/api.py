"""HTTP intake for storefronts: ``POST /orders`` with an optional ``Idempotency-Key``."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel

from services.order import handlers, store
from services.order.domain import OrderStatus
from shared.runtime.http import answer_or_invalid
from shared.runtime.service import ServiceContext
from shared.runtime.uow import unit_of_work
from shared.schemas import Envelope
from shared.schemas.common import Reason
from shared.schemas.events.order import SubmitOrder


class OrderReceipt(BaseModel):
    order_id: str
    status: str
    order_version: int
    reasons: list[Reason]
    resubmission: bool
    track: str  # portal path that waits until this write is visible


class Conflict(BaseModel):
    detail: Reason


CONFLICTS = (
    "The storefront reference was already submitted with a different body "
    "(reference_conflict), or the Idempotency-Key was used with a different body "
    "(idempotency_key_reused) or is in use by a concurrent request (idempotency_key_in_use)"
)
KEY_REUSED = "Idempotency-Key was already used with a different body"
KEY_IN_USE = "Idempotency-Key is in use by a concurrent request"


def _conflict(code: str, field: str, message: str) -> HTTPException:
    return HTTPException(409, Reason(code=code, field=field, message=message).model_dump())


def _receipt(row: store.OrderRow, *, resubmission: bool) -> OrderReceipt:
    return OrderReceipt(
        order_id=row.order_id,
        status=row.status,
        order_version=row.version,
        reasons=row.reasons,
        resubmission=resubmission,
        track=f"/orders/{row.order_id}?min_version={row.version}&wait_ms=5000",
    )


def router(ctx: ServiceContext) -> APIRouter:
    api = APIRouter(tags=["orders"])

    @api.post(
        "/orders",
        status_code=201,
        responses={
            200: {"model": OrderReceipt, "description": "Already submitted: the existing order"},
            409: {"model": Conflict, "description": CONFLICTS},
            422: answer_or_invalid(
                OrderReceipt,
                "Rejected: the receipt lists machine-readable reasons; or the body is not "
                "an order.submit.v1 payload (FastAPI's validation detail)",
            ),
        },
    )
    async def submit_order(
        body: SubmitOrder,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=255)] = None,
    ) -> OrderReceipt:
        """Submit an order. Resubmitting the same storefront reference returns the same order."""
        data = body.to_json()
        request_hash = hashlib.sha256(data).hexdigest()
        request = Envelope(
            type=SubmitOrder.TYPE,
            source="http/storefront",
            data=data,
            subject=body.subject,
            correlation_id=x_correlation_id,
        )
        async with unit_of_work(ctx.pool, ctx.name, ctx.schema) as uow:
            prior = (
                await store.find_idempotency_key(uow.conn, idempotency_key)
                if idempotency_key
                else None
            )
            if prior is not None and prior[0] != request_hash:
                raise _conflict("idempotency_key_reused", "Idempotency-Key", KEY_REUSED)
            submitted = await handlers.submit_order(uow, body, request)
            if submitted.conflict is not None:
                raise HTTPException(409, submitted.conflict.model_dump())
            row = submitted.order
            if (
                idempotency_key
                and prior is None
                and not await store.save_idempotency_key(
                    uow.conn, idempotency_key, request_hash, row.order_id
                )
            ):
                # a concurrent request took the key first; the transaction rolls back
                raise _conflict("idempotency_key_in_use", "Idempotency-Key", KEY_IN_USE)
        resubmission = not submitted.created
        if row.status == OrderStatus.REJECTED:
            response.status_code = 422
        elif resubmission:
            response.status_code = 200
        return _receipt(row, resubmission=resubmission)

    return api
