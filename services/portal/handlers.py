"""Events in → projection rules → read models out, in one unit of work."""

from __future__ import annotations

from services.portal import domain, store
from shared.runtime.uow import UnitOfWork
from shared.schemas import TOPICS, Envelope, Message
from shared.schemas.events.inventory import StockLevelChanged


async def project_order_activity(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    assert isinstance(message, domain.TRACKED)
    current = await store.lock_view(uow.conn, message.order_id)
    change = domain.apply(current, message, envelope.id)
    if change is not None:
        await store.save(uow.conn, *change)


async def project_stock_level(uow: UnitOfWork, message: Message, envelope: Envelope) -> None:
    assert isinstance(message, StockLevelChanged)
    current = await store.lock_position(uow.conn, message.sku, message.warehouse_id)
    position = domain.apply_level(current, message)
    if position is not None:
        await store.save_position(uow.conn, position)


def _tracked_types() -> list[str]:
    """Every order-keyed event of the lifecycle, from placement to the customer's door."""
    topics = (
        "order.events",
        "payment.events",
        "inventory.events",
        "risk.events",
        "picking.events",
        "packing.events",
        "shipping.events",
    )
    return [t for topic in topics for t in TOPICS[topic].messages]


HANDLERS = {
    **{type_: project_order_activity for type_ in _tracked_types()},
    StockLevelChanged.TYPE: project_stock_level,
}
