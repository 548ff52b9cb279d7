"""The dispatcher (dispatch.py) with the simulated carrier and an in-process label ledger:
each packing of an order at a warehouse, the reservation round's and a later backorder
round's, is a shipment of its own with its own label. No broker, no database: the unit
of work only collects what it emits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import asyncpg

from services.fulfillment.shipping.dispatch import Dispatcher
from services.fulfillment.shipping.domain.shipment import (
    ShipmentStatus,
    label_key_for,
    shipment_id_for,
)
from services.fulfillment.shipping.network import load_carriers, load_warehouses
from services.fulfillment.shipping.simulated_carrier import MemoryLabelLedger, SimulatedCarrier
from services.fulfillment.shipping.store.shipments import OrderRow, ShipmentRow
from shared.runtime.external import RetryPolicy
from shared.runtime.uow import UnitOfWork
from shared.runtime.writes import Writes
from shared.schemas import Envelope
from shared.schemas.common import Address, Customer
from shared.schemas.events.fulfillment import ItemCount, Package, ShipmentDispatched

ROUND = "backorder:5c0ffee15ba5eba11c0d"

ORDER = OrderRow(
    order_id="order-1",
    placed_at=datetime(2025, 3, 3, 9, tzinfo=UTC),
    service_level="standard",
    ship_to=Address(
        name="Ada", line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR"
    ),
    customer=Customer(customer_id="cust-1", email="ada@example.com"),
    cancelled=False,
)


def shipment(packing_id: str, backorder_round: str | None) -> ShipmentRow:
    return ShipmentRow(
        shipment_id=shipment_id_for(packing_id),
        packing_id=packing_id,
        order_id=ORDER.order_id,
        warehouse_id="WH-BER",
        backorder_round=backorder_round,
        packages=[
            Package(
                package_id=f"{packing_id}-box1",
                box_code="M",
                length_mm=400,
                width_mm=300,
                height_mm=200,
                weight_grams=1500,
                items=[ItemCount(line_id="1", sku="MUG-BLUE", quantity=1)],
            )
        ],
        status=ShipmentStatus.AWAITING_ORDER,
        carrier=None,
        tracking_number=None,
        estimated_delivery=None,
        last_scan_at=None,
    )


async def test_each_round_of_a_warehouse_ships_with_a_label_of_its_own() -> None:
    ledger = MemoryLabelLedger()
    dispatcher = Dispatcher(
        SimulatedCarrier(load_carriers(), ledger, seed=42),
        load_warehouses(),
        retry=RetryPolicy(attempts=1),
    )
    # buffered: emitted events are held in memory, the connection is never used
    uow = UnitOfWork(
        conn=cast(asyncpg.Connection, None), service="shipping", schema="s", buffered=True
    )
    cause = Envelope(type="packing.packed.v1", source="test", data=b"{}")
    reservation = shipment("pack-order-1-WH-BER", None)
    backorder = shipment(f"pack-order-1-WH-BER-{ROUND}", ROUND)

    writes = Writes()
    for packed in (reservation, backorder):
        await dispatcher.ship(uow, writes, cause, ORDER, packed)

    dispatched = [
        ShipmentDispatched.model_validate_json(e.data)
        for e in uow.emitted
        if e.type == ShipmentDispatched.TYPE
    ]
    assert [(d.shipment_id, d.warehouse_id, d.backorder_round) for d in dispatched] == [
        (reservation.shipment_id, "WH-BER", None),
        (backorder.shipment_id, "WH-BER", ROUND),
    ]
    assert reservation.shipment_id != backorder.shipment_id
    # the reservation round's key is the one it always had; the backorder round's is new
    assert label_key_for(reservation.packing_id) == "label:pack-order-1-WH-BER"
    assert set(ledger.labels) == {
        label_key_for(reservation.packing_id),
        label_key_for(backorder.packing_id),
    }
    numbers = [{d.tracking_number, *(p.tracking_number for p in d.packages)} for d in dispatched]
    assert not numbers[0] & numbers[1]
