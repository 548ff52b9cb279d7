"""Topic registry: every topic, its single writer, its key, partitions and consumers.

Topics are created from this table at start-up (never auto-created: the embedded broker
would give them 4 partitions). ``<context>.events`` has exactly one writing service;
``<context>.commands`` carries requests to a service from storefronts, the portal and
staff. Each consuming service has its own dead-letter topic ``<service>.dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass

EXTERNAL = "external"  # storefronts, 3PL clients, the portal's users


@dataclass(frozen=True)
class Topic:
    name: str
    writers: tuple[str, ...]
    key: str
    messages: tuple[str, ...]
    consumers: tuple[str, ...] = ()
    partitions: int = 6
    description: str = ""


def dlq_topic(service: str) -> str:
    return f"{service}.dlq"


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        Topic(
            "order.commands",
            writers=(EXTERNAL, "portal"),
            key="storefront reference (submit) or order id",
            messages=("order.submit.v1", "order.cancel.v1", "order.review_decide.v1"),
            consumers=("order",),
            description="Storefront submissions and customer/staff requests about an order.",
        ),
        Topic(
            "order.events",
            writers=("order",),
            key="order id",
            messages=(
                "order.placed.v1",
                "order.rejected.v1",
                "order.awaiting_review.v1",
                "order.confirmed.v1",
                "order.cancelled.v1",
                "order.picking_started.v1",
                "order.packed.v1",
                "order.shipped.v1",
                "order.delivery_exception.v1",
                "order.delivered.v1",
                "order.completed.v1",
            ),
            consumers=(
                "inventory",
                "notification",
                "payment",
                "picking",
                "portal",
                "returns",
                "risk",
                "shipping",
            ),
            description="The order's state changes; services/order is the only writer.",
        ),
        Topic(
            "payment.commands",
            writers=("portal", "returns"),
            key="order id",
            messages=("payment.refund.v1",),
            consumers=("payment",),
            description="Refund requests: returns after inspection, staff goodwill refunds.",
        ),
        Topic(
            "payment.events",
            writers=("payment",),
            key="order id",
            messages=(
                "payment.authorized.v1",
                "payment.declined.v1",
                "payment.authorization_failed.v1",
                "payment.voided.v1",
                "payment.captured.v1",
                "payment.capture_failed.v1",
                "payment.refunded.v1",
                "payment.refund_failed.v1",
            ),
            consumers=("notification", "order", "portal", "returns"),
            description="Authorization, void, capture and refund outcomes from the gateway.",
        ),
        Topic(
            "inventory.commands",
            writers=(EXTERNAL, "portal"),
            key="SKU",
            messages=("inventory.receive_stock.v1",),
            consumers=("inventory",),
            description="Goods receipts from warehouse staff and 3PL clients.",
        ),
        Topic(
            "inventory.events",
            writers=("inventory",),
            key="order id",
            messages=(
                "inventory.reserved.v1",
                "inventory.backorder_allocated.v1",
                "inventory.reservation_failed.v1",
                "inventory.released.v1",
                "inventory.committed.v1",
            ),
            consumers=("order", "picking", "portal"),
            description="What happens to an order's stock: reserve (split per warehouse), "
            "backorder, release, commit.",
        ),
        Topic(
            "stock.events",
            writers=("inventory",),
            key="SKU",
            messages=("stock.level_changed.v1", "inventory.stock_received.v1"),
            consumers=("portal",),
            description="Stock per SKU and warehouse, for availability in the portal.",
        ),
        Topic(
            "risk.events",
            writers=("risk",),
            key="order id",
            messages=("risk.assessed.v1",),
            consumers=("order", "portal"),
            description="Fraud/velocity verdicts on placed orders.",
        ),
        Topic(
            "picking.commands",
            writers=(EXTERNAL, "portal"),
            key="order id",
            messages=("picking.confirm_pick.v1",),
            consumers=("picking",),
            description="Pick confirmations from warehouse handhelds and staff screens.",
        ),
        Topic(
            "picking.events",
            writers=("picking",),
            key="order id",
            messages=(
                "picking.task_created.v1",
                "picking.item_picked.v1",
                "picking.short_picked.v1",
                "picking.completed.v1",
                "picking.task_cancelled.v1",
            ),
            consumers=("order", "packing", "inventory", "portal"),
            description="Pick tasks per warehouse and their progress.",
        ),
        Topic(
            "packing.events",
            writers=("packing",),
            key="order id",
            messages=("packing.packed.v1", "packing.nothing_picked.v1"),
            consumers=("order", "portal", "shipping"),
            description="Packages (box, dimensions, weight, contents) ready for a label, "
            "or nothing to pack where every unit was picked short.",
        ),
        Topic(
            "shipping.commands",
            writers=("shipping",),
            key="order id",
            messages=("shipping.carrier_update.v1",),
            consumers=("shipping",),
            description="Carrier webhook calls, queued by shipping's HTTP endpoint.",
        ),
        Topic(
            "shipping.events",
            writers=("shipping",),
            key="order id",
            messages=(
                "shipping.label_purchased.v1",
                "shipment.dispatched.v1",
                "shipment.tracking_updated.v1",
                "shipment.delivered.v1",
                "shipment.exception.v1",
            ),
            consumers=("inventory", "notification", "order", "payment", "portal"),
            description="Labels, dispatch and carrier tracking of shipments.",
        ),
        Topic(
            "returns.commands",
            writers=(EXTERNAL, "portal"),
            key="order id",
            messages=("returns.request.v1", "returns.decide.v1", "returns.receive.v1"),
            consumers=("returns",),
            description="Return requests (customers, agents), decisions (staff), receipts "
            "(warehouse).",
        ),
        Topic(
            "returns.events",
            writers=("returns",),
            key="order id",
            messages=(
                "returns.requested.v1",
                "returns.approved.v1",
                "returns.rejected.v1",
                "returns.received.v1",
                "returns.inspected.v1",
                "returns.refund_requested.v1",
                "returns.exchange_created.v1",
                "returns.restocked.v1",
                "returns.completed.v1",
            ),
            consumers=("inventory", "notification", "order", "portal"),
            description="After-sales: RMA decisions, inspection, refund, exchange, restock.",
        ),
        Topic(
            "notification.commands",
            writers=("portal",),
            key="customer id",
            messages=("notification.preferences_update.v1",),
            consumers=("notification",),
            description="Customers' channel preferences, set in the portal.",
        ),
        Topic(
            "notification.events",
            writers=("notification",),
            key="order id (customer id for preferences)",
            messages=(
                "notification.sent.v1",
                "notification.failed.v1",
                "notification.preferences_updated.v1",
            ),
            consumers=("portal",),
            description="Messages sent to customers and their preferences.",
        ),
    )
}

# Every service that consumes something has a dead-letter topic.
CONSUMING_SERVICES: tuple[str, ...] = tuple(
    sorted({service for topic in TOPICS.values() for service in topic.consumers})
)


def all_topic_names() -> list[str]:
    return [*TOPICS, *(dlq_topic(s) for s in CONSUMING_SERVICES)]


def subscriptions(service: str) -> list[str]:
    return [t.name for t in TOPICS.values() if service in t.consumers]


def topic_for_message(type_: str, writer: str) -> str:
    """The one topic a writer publishes ``type_`` on (fails loudly for a wrong writer)."""
    for topic in TOPICS.values():
        if type_ in topic.messages and writer in topic.writers:
            return topic.name
    raise LookupError(f"{writer} writes {type_} on no registered topic")
