"""The carrier adapter: what the shipping service needs from a carrier (or an aggregator
covering several), and the values that cross that boundary.

An adapter quotes every service it can offer for a shipment, and buys a label for one
of them. ``buy_label`` carries an idempotency key: a carrier that sees the same key
again returns the first label and charges nothing more, *whatever the request says* —
the caller takes carrier, service, cost and date from the label it gets back. That is
what makes a crash between buying and committing harmless: the retry asks again with
the same key and gets the same label.

No answer (timeout, 5xx, unreachable) raises :class:`CarrierError`; the service retries
it with the same key. The default adapter is the simulated carrier
(``simulated_carrier.py``); docs/shipping.md says how to plug in a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from services.fulfillment.shipping.domain.rating import Parcel
from services.fulfillment.shipping.domain.shopping import Quote
from shared.schemas.common import Money


@dataclass(frozen=True)
class Place:
    """A ship-from or ship-to address as printed on the label."""

    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    region: str | None = None
    line2: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LabelRequest:
    reference: str  # our order id, printed on the label
    ship_from: Place
    ship_to: Place
    parcels: tuple[Parcel, ...]
    ship_date: date
    recipient_email: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "ship_from": self.ship_from.to_json(),
            "ship_to": self.ship_to.to_json(),
            "parcels": [dict(p.__dict__) for p in self.parcels],
            "ship_date": self.ship_date.isoformat(),
        }


@dataclass(frozen=True)
class Label:
    carrier: str
    service: str
    tracking_number: str  # the shipment's master number
    package_tracking: dict[str, str]  # package id → the package's own number
    label_url: str
    cost: Money
    estimated_delivery: date

    def to_json(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "service": self.service,
            "tracking_number": self.tracking_number,
            "package_tracking": self.package_tracking,
            "label_url": self.label_url,
            "cost": self.cost.model_dump(),
            "estimated_delivery": self.estimated_delivery.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Label:
        return cls(
            carrier=data["carrier"],
            service=data["service"],
            tracking_number=data["tracking_number"],
            package_tracking=dict(data["package_tracking"]),
            label_url=data["label_url"],
            cost=Money.model_validate(data["cost"]),
            estimated_delivery=date.fromisoformat(data["estimated_delivery"]),
        )


class CarrierError(Exception):
    """No answer from the carrier: safe to retry with the same idempotency key."""


class CarrierAdapter(Protocol):
    """A carrier, or an aggregator of several. Every purchase is idempotent by key."""

    def carriers(self) -> frozenset[str]:
        """The carrier names this adapter answers for (webhook paths use them)."""
        ...

    async def rates(self, request: LabelRequest) -> list[Quote]:
        """Every service that can carry the shipment, with its cost and delivery date."""
        ...

    async def buy_label(
        self, request: LabelRequest, quote: Quote, *, idempotency_key: str
    ) -> Label: ...
