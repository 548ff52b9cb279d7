"""Order commands in → domain decision → events out, in one unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.order import domain, store
from shared.runtime.consumer import Batched, Handler
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import (
    NothingPicked,
    Packed,
    PickTaskCreated,
    ShipmentDelivered,
    ShipmentDispatched,
    ShipmentException,
    ShortPicked,
)
from shared.schemas.events.inventory import (
    BackorderAllocated,
    InventoryReservationFailed,
    InventoryReserved,
)
from shared.schemas.events.order import (
    CancelOrder,
    DecideReview,
    OrderPlaced,
    OrderRejected,
    SubmitOrder,
)
from shared.schemas.events.payment import (
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
)
from shared.schemas.events.risk import RiskAssessed

log = get_logger(__name__)


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: the order it is about, whether this call created it,
    and, when it reused a placed reference with another body, why it was refused."""

    order: store.OrderRow
    created: bool
    conflict: Reason | None = None


async def submit_order(uow: UnitOfWork, cmd: SubmitOrder, cause: Envelope | None) -> Submitted:
    """Place or reject a storefront order; a resubmission returns the existing order, a
    different body under the same reference is refused (nothing written)."""
    order_id = domain.order_id_for(cmd.storefront_id, cmd.storefront_reference)
    existing = await store.get_order(uow.conn, order_id)
    if existing is not None:
        return await _again(uow, existing, cmd)
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
    if not inserted:  # a concurrent submission of the same reference won the insert
        row = await store.get_order(uow.conn, order_id)
        assert row is not None
        return await _again(uow, row, cmd)
    await uow.emit(event, cause=cause)
    return Submitted(store.OrderRow(order_id, status, 1, reasons), created=True)


async def _again(uow: UnitOfWork, existing: store.OrderRow, cmd: SubmitOrder) -> Submitted:
    placed = await store.placed_submission(uow.conn, existing.order_id)
    assert placed is not None
    conflict = domain.reference_conflict(placed, cmd, existing.order_id)
    return Submitted(existing, created=False, conflict=conflict)


async def on_submit_order(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """Over Kafka a refused resubmission is answered with ``order.rejected.v1``: it names
    the existing order at its current version, so projections of the order ignore it."""
    assert isinstance(message, SubmitOrder)
    submitted = await submit_order(uow, message, envelope)
    if submitted.conflict is None:
        return
    order, reason = submitted.order, submitted.conflict
    log.info("order.resubmission_refused", order_id=order.order_id, code=reason.code)
    await store.record_refusal(
        uow.conn, envelope.id, order.order_id, envelope.type, reason.code, reason.message
    )
    refused = OrderRejected(
        order_id=order.order_id,
        order_version=order.version,
        occurred_at=datetime.now(UTC),
        storefront_id=message.storefront_id,
        storefront_reference=message.storefront_reference,
        customer_id=message.customer.customer_id or None,
        reasons=[reason],
    )
    await uow.emit(refused, cause=envelope)


async def on_saga_steps(uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
    """Verdicts (payment, stock, risk) and stage reports (picking, packing, shipping, the
    capture) move orders on. Set-based: a run of them locks its orders in one query and
    saves them in one, with each order's events emitted in the order the run gives."""
    ids = {message.order_id for message, _ in events}  # type: ignore[attr-defined]
    orders = await store.lock_orders(uow.conn, ids)
    changed: dict[str, tuple[domain.Order, list[Reason]]] = {}
    now = datetime.now(UTC)
    for message, envelope in events:
        assert isinstance(message, (*VERDICTS, *STAGE_REPORTS))
        order = orders.get(message.order_id)
        if order is None:
            # every one follows an order.placed we wrote: an unknown order is a bug upstream
            raise LookupError(f"no order {message.order_id}")
        if isinstance(message, VERDICTS):
            outcome = domain.record(order, message, now)
            order, emitted = outcome.order, [outcome.event] if outcome.event else []
        elif order.status in (domain.OrderStatus.CANCELLED, domain.OrderStatus.REJECTED):
            log.warning(
                "order.stage_report_for_closed_order",
                order_id=order.order_id,
                type=envelope.type,
                status=order.status,
            )
            continue
        else:
            advanced = domain.record_progress(order, message, now)
            order, emitted = advanced.order, advanced.events
        orders[order.order_id] = order  # the next event of the run sees it
        reasons = [r for event in emitted for r in getattr(event, "reasons", [])]
        if not reasons and order.order_id in changed:
            reasons = changed[order.order_id][1]  # none new: the order keeps the last ones
        changed[order.order_id] = (order, reasons)
        for event in emitted:
            await uow.emit(event, cause=envelope)
    await store.save_orders(uow.conn, list(changed.values()))


async def on_request(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    """A customer's or staff member's request: done, or refused with a recorded reason."""
    assert isinstance(message, CancelOrder | DecideReview)
    order = await _load(uow, message.order_id)
    try:
        if isinstance(message, CancelOrder):
            outcome = domain.cancel(order, message, datetime.now(UTC))
        else:
            outcome = domain.decide_review(order, message, datetime.now(UTC))
    except domain.Refused as refused:
        log.info("order.request_refused", code=refused.code, reason=str(refused))
        await store.record_refusal(
            uow.conn, envelope.id, order.order_id, envelope.type, refused.code, str(refused)
        )
        return
    await _apply(uow, outcome, envelope)


async def _load(uow: UnitOfWork, order_id: str) -> domain.Order:
    order = await store.lock_order(uow.conn, order_id)
    if order is None:
        # every verdict follows an order.placed we wrote: an unknown order is a bug upstream
        raise LookupError(f"no order {order_id}")
    return order


async def _apply(uow: UnitOfWork, outcome: domain.Outcome, cause: Envelope) -> None:
    reasons = list(getattr(outcome.event, "reasons", []))
    await store.save_order(uow.conn, outcome.order, reasons)
    if outcome.event is not None:
        await uow.emit(outcome.event, cause=cause)


VERDICTS = (
    PaymentAuthorized,
    PaymentDeclined,
    PaymentAuthorizationFailed,
    InventoryReserved,
    InventoryReservationFailed,
    RiskAssessed,
)

STAGE_REPORTS = (
    PickTaskCreated,
    ShortPicked,
    Packed,
    NothingPicked,
    ShipmentDispatched,
    ShipmentException,
    ShipmentDelivered,
    PaymentCaptured,
    BackorderAllocated,
)

SAGA_STEPS = Batched(on_saga_steps)
HANDLERS: dict[str, Handler] = {
    SubmitOrder.TYPE: on_submit_order,
    CancelOrder.TYPE: on_request,
    DecideReview.TYPE: on_request,
    **{type_.TYPE: SAGA_STEPS for type_ in (*VERDICTS, *STAGE_REPORTS)},
}
