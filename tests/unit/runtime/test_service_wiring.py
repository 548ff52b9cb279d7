"""Each service's handlers are reachable: their types arrive on topics it consumes."""

from __future__ import annotations

import pytest

from services.fulfillment.packing.app import definition as packing
from services.fulfillment.picking.app import definition as picking
from services.fulfillment.shipping.app import definition as shipping
from services.inventory.app import definition as inventory
from services.order.app import definition as order
from services.payment.app import definition as payment
from services.portal.app import definition as portal
from shared.runtime.service import ServiceDefinition


@pytest.mark.parametrize(
    "build",
    [order, payment, inventory, portal, picking, packing, shipping],
    ids=["order", "payment", "inventory", "portal", "picking", "packing", "shipping"],
)
def test_handlers_are_reachable(build: object) -> None:
    assert callable(build)
    service: ServiceDefinition = build()
    assert service.handlers, "a service with a consumer handles something"
    assert service.unreachable_handlers() == []


def test_a_handler_on_no_consumed_topic_is_reported() -> None:
    service = order()
    broken = ServiceDefinition(
        name="order",
        migrations=service.migrations,
        handlers={
            **service.handlers,
            "stock.level_changed.v1": service.handlers["order.submit.v1"],
        },
    )
    assert broken.unreachable_handlers() == ["stock.level_changed.v1"]
