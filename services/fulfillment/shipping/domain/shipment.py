"""A shipment's identity, its states, and what a carrier scan changes.

One shipment per packing (a packing is one warehouse's boxes for one order and one
allocation round: the order's reservation, or a backorder round allocated there later, so
a warehouse may ship an order more than once). Its id and the label's idempotency key
derive from the packing id, so a redelivered or replayed ``packing.packed`` finds the same
shipment and can never buy a second label, and each round gets its own.

Every new scan becomes a ``shipment.tracking_updated``. On top of that a ``delivered``
scan delivers the shipment (once: delivery is final, later scans are only recorded),
and an exception scan (``delivery_exception``, ``delayed``, ``returned_to_sender``)
before delivery becomes a ``shipment.exception``. A scan older than the latest one seen
(carriers do not always report in order) is reported but does not move the status back.
A scan dated later than now (beyond the clocks' allowed skew) is refused: it cannot have
happened yet, and once recorded every real scan would look older than it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import get_args

from shared.schemas.common import Reason
from shared.schemas.events.fulfillment import ExceptionStatus, TrackingStatus

# Fixed forever: changing it would give replayed packings new shipment ids.
SHIPPING_NAMESPACE = uuid.UUID("0c9f3a52-6e1d-5b7a-9d24-3f8e1b6a7c05")


def shipment_id_for(packing_id: str) -> str:
    return str(uuid.uuid5(SHIPPING_NAMESPACE, f"shipment:{packing_id}"))


def label_key_for(packing_id: str) -> str:
    """The carrier's idempotency key for the packing's label: whatever event or crash
    leads here again, the carrier answers with the first label."""
    return f"label:{packing_id}"


class ShipmentStatus(StrEnum):
    AWAITING_ORDER = "awaiting_order"  # packed before order.placed arrived
    CANCELLED = "cancelled"  # the order was cancelled before a label was bought
    DISPATCHED = "dispatched"  # label bought, collected by the carrier
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    DELIVERY_EXCEPTION = "delivery_exception"
    DELAYED = "delayed"
    RETURNED_TO_SENDER = "returned_to_sender"


EXCEPTION_STATUSES: frozenset[str] = frozenset(get_args(ExceptionStatus))
# statuses a shipment can only have once the carrier has it (it has a tracking number)
WITH_CARRIER: frozenset[ShipmentStatus] = frozenset(ShipmentStatus) - {
    ShipmentStatus.AWAITING_ORDER,
    ShipmentStatus.CANCELLED,
}

DEFAULT_EXCEPTION_MESSAGES: dict[str, str] = {
    "delivery_exception": "the carrier could not deliver the shipment",
    "delayed": "the carrier reported a delay",
    "returned_to_sender": "the carrier is returning the shipment to the warehouse",
}


@dataclass(frozen=True)
class Tracking:
    """What the carrier has told us so far about a dispatched shipment."""

    status: ShipmentStatus
    estimated_delivery: date | None
    last_scan_at: datetime | None


@dataclass(frozen=True)
class Scan:
    status: TrackingStatus
    occurred_at: datetime
    estimated_delivery: date | None = None


@dataclass(frozen=True)
class ScanOutcome:
    tracking: Tracking  # the shipment after the scan
    delivered: bool = False  # emit shipment.delivered
    exception: ExceptionStatus | None = None  # emit shipment.exception with this status


def from_the_future(occurred_at: datetime, now: datetime, skew: timedelta) -> bool:
    """A scan dated after ``now`` by more than the clocks may differ: refused. Recorded, it
    would pin the shipment's status (later real scans would look older) and show a date
    to come to the customer."""
    return occurred_at > now + skew


def apply_scan(current: Tracking, scan: Scan) -> ScanOutcome:
    if current.status not in WITH_CARRIER:
        raise ValueError(f"a shipment in status {current.status} has no carrier scans")
    newest = current.last_scan_at is None or scan.occurred_at >= current.last_scan_at
    if current.status == ShipmentStatus.DELIVERED:
        return ScanOutcome(current)  # delivery is final: recorded, nothing more
    eta = current.estimated_delivery
    if scan.estimated_delivery is not None and newest:
        eta = scan.estimated_delivery
    if scan.status == "delivered":
        moved = Tracking(ShipmentStatus.DELIVERED, eta, _latest(current.last_scan_at, scan))
        return ScanOutcome(moved, delivered=True)
    status = ShipmentStatus(scan.status) if newest else current.status
    moved = Tracking(status, eta, _latest(current.last_scan_at, scan))
    exception = _exception_status(scan.status)
    return ScanOutcome(moved, exception=exception)


def _exception_status(status: TrackingStatus) -> ExceptionStatus | None:
    if status == "delivery_exception" or status == "delayed" or status == "returned_to_sender":
        return status
    return None


def _latest(last: datetime | None, scan: Scan) -> datetime:
    return scan.occurred_at if last is None else max(last, scan.occurred_at)


def exception_reason(status: ExceptionStatus, description: str) -> Reason:
    """The carrier's words when it gave some, a plain default when not."""
    return Reason(code=status, message=description or DEFAULT_EXCEPTION_MESSAGES[status])
