"""Order events in → projection rules → tracking view out, in one unit of work."""

from __future__ import annotations

from services.portal import domain, store
from shared.runtime.uow import UnitOfWork
from shared.schemas import Envelope, Message
from shared.schemas.events.order import OrderEvent


async def project_order_event(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    assert isinstance(message, OrderEvent)
    current = await store.lock_view(uow.conn, message.order_id)
    change = domain.apply(current, message)
    if change is not None:
        await store.save(uow.conn, *change)


HANDLERS = {type_: project_order_event for type_ in domain.STATUS_BY_EVENT}
