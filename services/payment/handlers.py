"""Order, shipment and refund messages in → payment rules → gateway → events out, in the
runtime's unit of work. The gateway is called inside that unit of work, which is safe
because every call is idempotent by a key derived from the causing event (see calls.py).

The messages every order brings (``order.placed``, ``shipment.dispatched``) are applied
set-based, a run at a time, with the gateway called for several orders at once (each
order's records in turn); cancellations and refunds, rarer, one at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from services.payment import domain, store
from services.payment.calls import GatewayCalls
from services.payment.domain import Payment, PaymentStatus
from services.payment.gateway import PaymentGateway
from services.payment.store import PaymentWrites
from shared.runtime.consumer import Batched, Handler, record_context
from shared.runtime.external import RetryPolicy
from shared.runtime.keyed import Emits, HeldEvents, each_key_in_turn
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.common import Money
from shared.schemas.events.fulfillment import ShipmentDispatched
from shared.schemas.events.order import OrderCancelled, OrderPlaced
from shared.schemas.events.payment import (
    PaymentAuthorizationFailed,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentCaptureFailed,
    PaymentDeclined,
    PaymentRefunded,
    PaymentRefundFailed,
    PaymentVoided,
    RefundPayment,
)

log = get_logger(__name__)


class VoidFailed(Exception):
    """The gateway would not void: retried by the runtime, then dead-lettered for a re-drive
    (the contract has no ``payment.void_failed`` event)."""


def _ignored(action: domain.Ignore, message: Message) -> None:
    say = log.warning if action.anomaly else log.info
    say("payment.ignored", reason=action.reason, message_type=message.TYPE)


def _now() -> datetime:
    return datetime.now(UTC)


def _order_id(message: Message) -> str:
    assert isinstance(message, OrderPlaced | ShipmentDispatched)
    return message.order_id


async def _lock_payments(uow: UnitOfWork, order_ids: set[str]) -> dict[str, Payment]:
    """The orders' payments, each created (status new) if it is the first message about
    the order, all locked for this transaction."""
    await store.ensure_payments(uow.conn, {o: domain.payment_id_for(o) for o in order_ids})
    return await store.lock_payments(uow.conn, order_ids)


class PaymentHandlers:
    """The payment service's handlers, bound to a gateway and its retry policy."""

    def __init__(self, gateway: PaymentGateway, retry: RetryPolicy, at_once: int = 1) -> None:
        self.calls = GatewayCalls(gateway, retry)
        self.at_once = at_once

    def handlers(self) -> dict[str, Handler]:
        # one Batched for both, so records of order.events and shipping.events that one
        # poll interleaves still make one run
        hot = Batched(self.on_placed_or_dispatched)
        return {
            OrderPlaced.TYPE: hot,
            OrderCancelled.TYPE: self.on_order_cancelled,
            ShipmentDispatched.TYPE: hot,
            RefundPayment.TYPE: self.on_refund_requested,
        }

    # -- handlers -------------------------------------------------------------------------

    async def on_placed_or_dispatched(
        self, uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
    ) -> None:
        """Authorize on ``order.placed``, capture on ``shipment.dispatched``. Set-based: the
        run's payments are created and locked with one statement each; the gateway is
        called for up to ``at_once`` orders at a time, each order's records in run order;
        then each record's events are emitted and its rows written, in run order, with one
        statement per table."""
        payments = await _lock_payments(uow, {_order_id(message) for message, _ in events})

        async def step(record: tuple[Message, Envelope]) -> tuple[PaymentWrites, HeldEvents]:
            message, envelope = record
            writes, held = PaymentWrites(), HeldEvents()
            payment = payments[_order_id(message)]
            with record_context(message, envelope):
                if isinstance(message, OrderPlaced):
                    payment = await self._authorize(held, writes, envelope, payment, message)
                else:
                    assert isinstance(message, ShipmentDispatched)
                    payment = await self._dispatched(held, writes, envelope, payment, message)
            payments[payment.order_id] = payment  # the order's next record sees it
            return writes, held

        stepped = await each_key_in_turn(
            events, lambda record: _order_id(record[0]), step, at_once=self.at_once
        )
        writes = PaymentWrites()
        for record_writes, held in stepped:
            writes.absorb(record_writes)
            await held.emit_into(uow)
        await writes.flush(uow.conn)

    async def on_order_cancelled(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, OrderCancelled)
        payment = (await _lock_payments(uow, {message.order_id}))[message.order_id]
        await store.note_cancellation(uow.conn, payment.order_id)
        action = domain.on_order_cancelled(payment)
        if isinstance(action, domain.Ignore):
            return _ignored(action, message)
        if isinstance(action, domain.RecordCancellation):
            if action.status != payment.status:
                await store.save_payment(uow.conn, self._moved(payment, action.status))
            log.info("payment.cancellation_recorded", status=action.status)
            return
        auth = action.authorization
        writes = PaymentWrites()
        outcome = await self.calls.void(writes, envelope, payment.order_id, auth.gateway_reference)
        await writes.flush(uow.conn)
        if not outcome.approved:
            raise VoidFailed(f"void of {auth.authorization_id} failed: {outcome.failure()}")
        await store.void_authorization(uow.conn, auth.authorization_id, outcome.reference())
        payment = self._moved(payment, PaymentStatus.VOIDED)
        await store.save_payment(uow.conn, payment)
        await uow.emit(
            PaymentVoided(
                **self._common(payment, auth.amount),
                authorization_id=auth.authorization_id,
                gateway_reference=outcome.reference(),
            ),
            cause=envelope,
        )

    async def on_refund_requested(
        self, uow: UnitOfWork, message: Message, envelope: Envelope
    ) -> None:
        assert isinstance(message, RefundPayment)
        cmd = message
        payment = await store.lock_payment(uow.conn, cmd.order_id)
        seen = await store.refund_exists(uow.conn, cmd.order_id, cmd.refund_id)
        action = domain.on_refund_requested(payment, cmd.amount, already_requested=seen)
        if isinstance(action, domain.Ignore):
            return _ignored(action, message)
        if isinstance(action, domain.RefuseRefund):
            error = domain.failure_error(action.code, action.message)
            await self._refund_failed(uow, envelope, cmd, payment, "refused", None, error, 1)
            return
        capture = action.capture
        writes = PaymentWrites()
        outcome = await self.calls.refund(
            writes, envelope, cmd.order_id, capture.gateway_reference, cmd.amount
        )
        await writes.flush(uow.conn)
        if not outcome.approved:
            error = outcome.failure()
            await self._refund_failed(
                uow, envelope, cmd, payment, "failed", capture.capture_id, error, outcome.attempts
            )
            return
        assert payment is not None
        await store.insert_refund(
            uow.conn,
            order_id=cmd.order_id,
            refund_id=cmd.refund_id,
            status="refunded",
            amount=cmd.amount,
            capture_id=capture.capture_id,
            gateway_reference=outcome.reference(),
            error=None,
            reason=cmd.reason,
            return_id=cmd.return_id,
            requested_by=cmd.requested_by,
        )
        status = domain.status_after_refund(capture, cmd.amount.amount_minor)
        if status != payment.status:
            await store.save_payment(uow.conn, self._moved(payment, status))
        await uow.emit(
            PaymentRefunded(
                **self._common(payment, cmd.amount),
                refund_id=cmd.refund_id,
                capture_id=capture.capture_id,
                gateway_reference=outcome.reference(),
                return_id=cmd.return_id,
            ),
            cause=envelope,
        )

    # -- steps ----------------------------------------------------------------------------

    async def _authorize(
        self,
        emits: Emits,
        writes: PaymentWrites,
        cause: Envelope,
        payment: Payment,
        placed: OrderPlaced,
    ) -> Payment:
        """Authorize the order's total; the payment as it is afterwards."""
        action = domain.on_order_placed(payment, placed)
        if isinstance(action, domain.Ignore):
            _ignored(action, placed)
            return payment
        payment = replace(payment, amount=action.amount)
        if isinstance(action, domain.Decline):
            return await self._declined(
                emits, writes, cause, payment, action.code, action.message, None
            )
        outcome = await self.calls.authorize(
            writes, cause, payment.order_id, action.token, action.amount
        )
        result = outcome.result
        if result is None:
            payment = self._moved(payment, PaymentStatus.AUTHORIZATION_FAILED)
            writes.payment(payment, last_error=outcome.error)
            await emits.emit(
                PaymentAuthorizationFailed(
                    **self._common(payment, action.amount),
                    error=outcome.error,
                    attempts=outcome.attempts,
                ),
                cause=cause,
            )
            return payment
        if not result.approved:
            code = domain.decline_code(result.code)
            return await self._declined(
                emits, writes, cause, payment, code, result.message, result.reference
            )
        auth = domain.Authorization(
            domain.authorization_id_for(payment.order_id), outcome.reference(), action.amount
        )
        writes.authorization(payment.order_id, auth, result.expires_at)
        payment = replace(self._moved(payment, PaymentStatus.AUTHORIZED), authorization=auth)
        writes.payment(payment)
        await emits.emit(
            PaymentAuthorized(
                **self._common(payment, action.amount),
                authorization_id=auth.authorization_id,
                gateway_reference=auth.gateway_reference,
                expires_at=result.expires_at,
            ),
            cause=cause,
        )
        if (waiting := domain.after_authorization(payment)) is not None:
            payment = await self._capture(emits, writes, cause, payment, waiting)
        return payment

    async def _dispatched(
        self,
        emits: Emits,
        writes: PaymentWrites,
        cause: Envelope,
        payment: Payment,
        dispatched: ShipmentDispatched,
    ) -> Payment:
        """Capture, or wait for the authorization; the payment as it is afterwards."""
        action = domain.on_shipment_dispatched(
            payment, event_id=cause.id, shipment_id=dispatched.shipment_id
        )
        if isinstance(action, domain.Ignore):
            _ignored(action, dispatched)
            return payment
        if isinstance(action, domain.DeferCapture):
            payment = replace(payment, pending_capture=action.pending)
            writes.payment(payment)
            log.info("payment.capture_deferred", shipment_id=dispatched.shipment_id)
            return payment
        if isinstance(action, domain.RefuseCapture):
            error = domain.failure_error(action.code, action.message)
            writes.payment(payment, last_error=error)
            await emits.emit(
                PaymentCaptureFailed(
                    **self._common(payment, action.authorization.amount),
                    authorization_id=action.authorization.authorization_id,
                    error=error,
                    attempts=1,  # refused before any gateway call; the contract wants >= 1
                ),
                cause=cause,
            )
            return payment
        return await self._capture(emits, writes, cause, payment, action)

    @staticmethod
    def _moved(payment: Payment, status: PaymentStatus) -> Payment:
        return replace(payment, status=domain.transition(payment.status, status))

    @staticmethod
    def _common(payment: Payment, amount: Money) -> dict[str, Any]:
        return {
            "order_id": payment.order_id,
            "payment_id": payment.payment_id,
            "amount": amount,
            "occurred_at": _now(),
        }

    async def _declined(
        self,
        emits: Emits,
        writes: PaymentWrites,
        cause: Envelope,
        payment: Payment,
        code: domain.DeclineCode,
        message: str,
        gateway_reference: str | None,
    ) -> Payment:
        payment = self._moved(payment, PaymentStatus.DECLINED)
        writes.payment(payment, decline_code=code)
        assert payment.amount is not None
        await emits.emit(
            PaymentDeclined(
                **self._common(payment, payment.amount),
                code=code,
                message=message,
                gateway_reference=gateway_reference,
            ),
            cause=cause,
        )
        return payment

    async def _capture(
        self,
        emits: Emits,
        writes: PaymentWrites,
        cause: Envelope,
        payment: Payment,
        action: domain.CaptureNow,
    ) -> Payment:
        auth = action.authorization
        outcome = await self.calls.capture(
            writes,
            cause,
            payment.order_id,
            auth.gateway_reference,
            action.amount,
            requested_by_event=action.event_id,
        )
        payment = replace(payment, pending_capture=None)
        if not outcome.approved:
            payment = self._moved(payment, PaymentStatus.CAPTURE_FAILED)
            writes.payment(payment, last_error=outcome.failure())
            await emits.emit(
                PaymentCaptureFailed(
                    **self._common(payment, action.amount),
                    authorization_id=auth.authorization_id,
                    error=outcome.failure(),
                    attempts=outcome.attempts,
                ),
                cause=cause,
            )
            return payment
        capture = domain.Capture(
            domain.capture_id_for(payment.order_id), outcome.reference(), action.amount
        )
        writes.capture(payment.order_id, capture, auth.authorization_id, action.shipment_id)
        payment = replace(self._moved(payment, PaymentStatus.CAPTURED), capture=capture)
        writes.payment(payment)
        await emits.emit(
            PaymentCaptured(
                **self._common(payment, action.amount),
                authorization_id=auth.authorization_id,
                capture_id=capture.capture_id,
                gateway_reference=capture.gateway_reference,
                shipment_id=action.shipment_id,
            ),
            cause=cause,
        )
        return payment

    async def _refund_failed(
        self,
        uow: UnitOfWork,
        cause: Envelope,
        cmd: RefundPayment,
        payment: Payment | None,
        status: str,
        capture_id: str | None,
        error: str,
        attempts: int,
    ) -> None:
        """Record the refund_id (so a repeat is a no-op) and say why it was not made."""
        await store.insert_refund(
            uow.conn,
            order_id=cmd.order_id,
            refund_id=cmd.refund_id,
            status=status,
            amount=cmd.amount,
            capture_id=capture_id,
            gateway_reference=None,
            error=error,
            reason=cmd.reason,
            return_id=cmd.return_id,
            requested_by=cmd.requested_by,
        )
        await uow.emit(
            PaymentRefundFailed(
                order_id=cmd.order_id,
                payment_id=payment.payment_id if payment else domain.payment_id_for(cmd.order_id),
                amount=cmd.amount,
                occurred_at=_now(),
                refund_id=cmd.refund_id,
                return_id=cmd.return_id,
                error=error,
                attempts=attempts,
            ),
            cause=cause,
        )


def build(gateway: PaymentGateway, retry: RetryPolicy, at_once: int = 1) -> dict[str, Handler]:
    return PaymentHandlers(gateway, retry, at_once).handlers()
