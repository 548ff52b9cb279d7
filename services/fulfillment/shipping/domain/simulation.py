"""The simulated carrier's scan plan for one shipment. Deterministic by seed.

Every shipment goes in_transit → out_for_delivery → delivered. With the configured
probabilities (default 0) a ``delayed`` scan comes between in transit and out for
delivery, and a failed attempt (``delivery_exception``) is followed by a second round out
for delivery before the delivery succeeds; each pushes the estimated delivery back by one
business day. The same seed and shipment always give the same plan, so a test or a
benchmark run can be repeated exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from shared.schemas.events.fulfillment import TrackingStatus


@dataclass(frozen=True)
class PlannedScan:
    status: TrackingStatus
    description: str
    at_destination: bool  # where the scan happens: the destination city or the origin's
    eta_delay_days: int = 0  # business days the ETA has slipped by, from this scan on

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "description": self.description,
            "at_destination": self.at_destination,
            "eta_delay_days": self.eta_delay_days,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlannedScan:
        return cls(
            status=data["status"],
            description=data["description"],
            at_destination=bool(data["at_destination"]),
            eta_delay_days=int(data["eta_delay_days"]),
        )


def plan(
    seed: int,
    shipment_id: str,
    *,
    delay_probability: float = 0.0,
    exception_probability: float = 0.0,
) -> list[PlannedScan]:
    rng = random.Random(f"{seed}:{shipment_id}")
    delayed = rng.random() < delay_probability
    failed_attempt = rng.random() < exception_probability
    slipped = 0
    scans = [PlannedScan("in_transit", "Collected from the warehouse, in transit", False)]
    if delayed:
        slipped += 1
        scans.append(PlannedScan("delayed", "Delayed at the sorting hub", False, slipped))
    scans.append(PlannedScan("out_for_delivery", "Out for delivery", True, slipped))
    if failed_attempt:
        slipped += 1
        scans += [
            PlannedScan(
                "delivery_exception",
                "Recipient not available; next attempt on the next business day",
                True,
                slipped,
            ),
            PlannedScan("out_for_delivery", "Out for delivery (second attempt)", True, slipped),
        ]
    scans.append(PlannedScan("delivered", "Delivered", True, slipped))
    return scans


def carrier_event_id(tracking_number: str, step: int) -> str:
    """Stable per step: a batch that rolled back and runs again reports the same scan."""
    return f"{tracking_number}:{step}"
