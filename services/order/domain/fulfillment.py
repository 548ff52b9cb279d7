"""After confirmation: the order follows its shipments to the customer's door. Pure.

The stage services report on three topics (picking, packing, shipping) and payment on a
fourth, so their reports can reach this service in any order. Each report is noted as a
fact; then the order advances through every stage the facts allow, one transition and
one order event at a time — picking → packed → shipped → delivered → completed — so the
order's own event stream is always in lifecycle order, whatever order the facts came in.

An order shipped from several warehouses (a split reservation) is packed when every
warehouse has packed, shipped when every warehouse has dispatched, delivered when every
shipment is delivered. It is completed once delivered and the payment captured. Units
allocated later to a backordered line are a consignment of their own (``consignment``):
packed and shipped on their own, even from a warehouse that shipped the order already,
and the order is not delivered before they are. An order none of whose units could be
supplied (every unit picked short, none held elsewhere or backordered) is cancelled by
the system from picking, so payment voids its authorization.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from services.order.domain.lifecycle import OrderStatus, transition
from services.order.domain.progress import Progress, consignment, short_pick_key
from services.order.domain.saga import Order
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
from shared.schemas.events.inventory import BackorderAllocated
from shared.schemas.events.order import (
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderDeliveryException,
    OrderEvent,
    OrderPacked,
    OrderPickingStarted,
    OrderShipped,
)
from shared.schemas.events.payment import PaymentCaptured

FulfillmentFact = (
    PickTaskCreated
    | ShortPicked
    | Packed
    | NothingPicked
    | ShipmentDispatched
    | ShipmentException
    | ShipmentDelivered
    | PaymentCaptured
    | BackorderAllocated
)


@dataclass(frozen=True)
class Advanced:
    order: Order
    events: list[OrderEvent]


def note(progress: Progress, fact: FulfillmentFact) -> Progress:
    """Add one report to what is known; a repeated report changes nothing."""
    match fact:
        case PickTaskCreated():
            return replace(progress, picking_started=True)
        case ShortPicked():
            missing = fact.item.quantity - fact.picked
            reason = Reason(
                code="short_pick",
                field=fact.item.sku,
                message=f"{missing} unit(s) of {fact.item.sku} not found at {fact.warehouse_id} "
                f"({fact.item.location}); inventory allocates them again, or backorders them",
            )
            reasons = progress.short_picks
            return replace(
                progress,
                short_picks=reasons if reason in reasons else (*reasons, reason),
                short_picked=progress.short_picked
                | {short_pick_key(fact.task_id, fact.item.line_id)},
            )
        case Packed():
            return replace(
                progress,
                packed=progress.packed | {consignment(fact.warehouse_id, fact.backorder_round)},
                package_ids=progress.package_ids | {p.package_id for p in fact.packages},
            )
        case NothingPicked():
            # every unit of the consignment was short: nothing to pack or ship from it
            # (inventory's answers to the short picks say where the units come from)
            done = consignment(fact.warehouse_id, fact.backorder_round)
            # its short picks, in case their reports have not been read yet: the order
            # must not look shipped and delivered before inventory has answered them
            short = {short_pick_key(s.task_id, s.line_id) for s in fact.short_picks}
            return replace(
                progress,
                packed=progress.packed | {done},
                dispatched=progress.dispatched | {done},
                short_picked=progress.short_picked | short,
            )
        case ShipmentDispatched():
            etas = [d for d in (progress.estimated_delivery, fact.estimated_delivery) if d]
            return replace(
                progress,
                dispatched=progress.dispatched
                | {consignment(fact.warehouse_id, fact.backorder_round)},
                shipments=progress.shipments | {fact.shipment_id},
                estimated_delivery=max(etas) if etas else None,
            )
        case ShipmentException():
            if fact.shipment_id in progress.delivered:
                return progress  # a late report about a parcel already at the door
            return replace(
                progress,
                open_exception=fact.reason,
                estimated_delivery=fact.estimated_delivery or progress.estimated_delivery,
            )
        case ShipmentDelivered():
            return replace(
                progress, delivered=progress.delivered | {fact.shipment_id}, open_exception=None
            )
        case PaymentCaptured():
            return replace(progress, captured=True)
        case BackorderAllocated():
            settled = progress.short_picks_settled
            if fact.short_pick_task_id is not None and fact.short_pick_line_id is not None:
                settled |= {short_pick_key(fact.short_pick_task_id, fact.short_pick_line_id)}
            return replace(
                progress,
                consignments=progress.consignments
                | {consignment(a.warehouse_id, fact.round_id) for a in fact.allocations},
                backorder_pending=bool(fact.still_backordered),
                short_picks_settled=settled,
            )


def record_progress(order: Order, fact: FulfillmentFact, now: datetime) -> Advanced:
    """Note a stage's report, then move through every stage the facts allow."""
    order = replace(order, progress=note(order.progress, fact))
    events: list[OrderEvent] = []
    while (step := _next_step(order, now)) is not None:
        order, event = step
        events.append(event)
    return Advanced(order, events)


def _next_step(order: Order, now: datetime) -> tuple[Order, OrderEvent] | None:
    p, status = order.progress, order.status
    all_dispatched = bool(p.consignments) and p.consignments <= p.dispatched
    all_delivered = (
        all_dispatched
        and p.shipments <= p.delivered
        and not p.backorder_pending
        and not p.short_picks_unsettled
    )
    S = OrderStatus
    if status == S.CONFIRMED and p.picking_started:
        return _to(order, S.PICKING, now, OrderPickingStarted)
    # A consignment where every unit was short counts as packed with nothing in it. The
    # order is packed once every consignment is and something was packed; with nothing
    # packed it waits for inventory's answers, which may add consignments, and if none
    # comes and nothing waits on backorder, nothing of it can be supplied.
    every_consignment_packed = bool(p.consignments) and p.consignments <= p.packed
    if status == S.PICKING and every_consignment_packed and p.package_ids:
        return _to(order, S.PACKED, now, OrderPacked, package_count=len(p.package_ids))
    if status == S.PICKING and every_consignment_packed and _nothing_left_to_supply(p):
        return _to(
            order, S.CANCELLED, now, OrderCancelled,
            reasons=[NOTHING_SUPPLIED], cancelled_by="system",
        )  # fmt: skip
    if status == S.PACKED and all_dispatched:
        return _to(
            order, S.SHIPPED, now, OrderShipped,
            shipment_ids=sorted(p.shipments), estimated_delivery=p.estimated_delivery,
        )  # fmt: skip
    if status in (S.SHIPPED, S.DELIVERY_EXCEPTION) and all_delivered:
        return _to(order, S.DELIVERED, now, OrderDelivered)
    if status == S.SHIPPED and p.open_exception is not None:
        reasons = [p.open_exception]
        return _to(order, S.DELIVERY_EXCEPTION, now, OrderDeliveryException, reasons=reasons)
    if status == S.DELIVERED and p.captured:
        return _to(order, S.COMPLETED, now, OrderCompleted)
    return None


NOTHING_SUPPLIED = Reason(
    code="nothing_supplied",
    message="none of the order's units could be found, held elsewhere or backordered; "
    "nothing ships and the payment is voided",
)


def _nothing_left_to_supply(p: Progress) -> bool:
    """Nothing packed, every short pick answered with nothing more to pack, nothing on
    backorder: no report still to come can add a unit to ship."""
    return not p.package_ids and not p.short_picks_unsettled and not p.backorder_pending


def _to(
    order: Order, status: OrderStatus, now: datetime, event_type: type[OrderEvent], **fields: object
) -> tuple[Order, OrderEvent]:
    moved = replace(order, status=transition(order.status, status), version=order.version + 1)
    event = event_type(
        order_id=order.order_id, order_version=moved.version, occurred_at=now, **fields
    )
    return moved, event
