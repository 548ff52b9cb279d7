"""Order commands in → domain decision → events out, in one unit of work."""

from __future__ import annotations

from datetime import UTC, datetime

from services.order import domain, store
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.order import OrderPlaced, OrderRejected, SubmitOrder


async def submit_order(uow: UnitOfWork, cmd: SubmitOrder, cause: Envelope | None) -> store.OrderRow:
    """Place or reject a storefront order; a resubmission returns the existing order."""
    order_id = domain.order_id_for(cmd.storefront_id, cmd.storefront_reference)
    existing = await store.get_order(uow.conn, order_id)
    if existing is not None:
        return existing
    decision = domain.validate_submission(cmd)
    now = datetime.now(UTC)
    common = dict(
        order_id=order_id,
        order_version=1,
        occurred_at=now,
        storefront_id=cmd.storefront_id,
        storefront_reference=cmd.storefront_reference,
    )
    event: OrderPlaced | OrderRejected
    if isinstance(decision, domain.Accepted):
        status = domain.OrderStatus.PLACED
        event = OrderPlaced(
            **common,
            customer=decision.customer,
            lines=decision.lines,
            currency=decision.currency,
            amounts=decision.amounts,
            shipping_address=decision.shipping_address,
            billing_address=decision.billing_address,
            service_level=decision.service_level,
            payment=decision.payment,
        )
    else:
        status = domain.OrderStatus.REJECTED
        event = OrderRejected(
            **common, customer_id=cmd.customer.customer_id or None, reasons=decision.reasons
        )
    reasons = event.reasons if isinstance(event, OrderRejected) else []
    inserted = await store.insert_order(
        uow.conn,
        order_id=order_id,
        storefront_id=cmd.storefront_id,
        storefront_reference=cmd.storefront_reference,
        customer_id=cmd.customer.customer_id or None,
        status=status,
        currency=cmd.currency,
        total_minor=cmd.total_minor,
        submission=cmd.model_dump_json(),
        reasons=reasons,
    )
    if inserted:
        await uow.emit(event, cause=cause)
    row = await store.get_order(uow.conn, order_id)
    assert row is not None
    return row


async def on_submit_order(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    assert isinstance(message, SubmitOrder)
    await submit_order(uow, message, envelope)


HANDLERS = {SubmitOrder.TYPE: on_submit_order}
