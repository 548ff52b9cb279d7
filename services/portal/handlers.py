"""Events in → projection rules → read models out, in one unit of work."""

from __future__ import annotations

from collections.abc import Sequence

from services.portal import domain, store
from shared.runtime.consumer import Batched, Handler, run_of
from shared.runtime.uow import UnitOfWork
from shared.schemas import TOPICS, Envelope, Message
from shared.schemas.events.inventory import StockLevelChanged


async def project_order_activity(
    uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]
) -> None:
    """Set-based: the portal applies every event of the lifecycle, so a run of them costs
    one locking read of the orders it touches and one write, not two statements each."""
    order_ids = {message.order_id for message, _ in events}  # type: ignore[attr-defined]
    views = await store.lock_views(uow.conn, order_ids)
    changes = []
    for message, envelope in events:
        assert isinstance(message, domain.TRACKED)
        change = domain.apply(views.get(message.order_id), message, envelope.id)
        if change is not None:
            views[message.order_id] = change[0]  # the next event of the run sees it
            changes.append(change)
    await store.save(uow.conn, changes)


async def project_stock_levels(uow: UnitOfWork, events: Sequence[tuple[Message, Envelope]]) -> None:
    """Set-based, like the tracking projection: one locking read, one write per run."""
    levels = run_of(StockLevelChanged, events)
    positions = await store.lock_positions(uow.conn, {(m.sku, m.warehouse_id) for m, _ in levels})
    changed: dict[tuple[str, str], domain.StockPosition] = {}
    for message, _ in levels:
        key = (message.sku, message.warehouse_id)
        position = domain.apply_level(positions.get(key), message)
        if position is not None:
            positions[key] = changed[key] = position
    await store.save_positions(uow.conn, list(changed.values()))


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


ORDER_ACTIVITY = Batched(project_order_activity)
HANDLERS: dict[str, Handler] = {
    **{type_: ORDER_ACTIVITY for type_ in _tracked_types()},
    StockLevelChanged.TYPE: Batched(project_stock_levels),
}
