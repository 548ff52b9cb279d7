"""The simulated carrier: the default :class:`CarrierAdapter`, behaving like an aggregator
of the carriers in ``seed/carriers.json``. Deterministic by seed.

It prices each service from billable weight and distance zone, dates delivery in
business days from the ship date, and sells labels whose tracking numbers derive from
the seed and the idempotency key. Like a real carrier it remembers every key in a
:class:`LabelLedger` — in the service's wiring, its own table written on its own
connection, never in the caller's transaction — so a key asked again (after a crash, a
rollback, a redelivery) gets the first label back and nothing is bought twice.

Collection and the later scans are simulated by ``simulator.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.fulfillment.shipping.carrier import Label, LabelRequest
from services.fulfillment.shipping.domain.calendar import add_business_days
from services.fulfillment.shipping.domain.rating import ServiceRate, Zone, zone_for
from services.fulfillment.shipping.domain.shopping import Quote
from services.fulfillment.shipping.network import CarrierNetwork
from shared.schemas.common import Money

LABEL_HOST = "https://labels.simulated-carrier.invalid"


class LabelLedger(Protocol):
    """The carrier's memory of sold labels. Implementations: :class:`MemoryLabelLedger`
    and ``store.carrier.PostgresLabelLedger``."""

    async def remember(self, key: str, request: dict[str, Any], label: Label) -> Label:
        """Keep ``label`` for ``key`` unless the key has one; the key's (first) label."""
        ...


@dataclass
class MemoryLabelLedger:
    """In-process memory, for unit tests."""

    labels: dict[str, Label] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    async def remember(self, key: str, request: dict[str, Any], label: Label) -> Label:
        self.calls[key] = self.calls.get(key, 0) + 1
        return self.labels.setdefault(key, label)


class SimulatedCarrier:
    def __init__(self, network: CarrierNetwork, ledger: LabelLedger, *, seed: int) -> None:
        self.network = network
        self.ledger = ledger
        self.seed = seed

    def carriers(self) -> frozenset[str]:
        return frozenset(c.carrier for c in self.network.carriers)

    async def rates(self, request: LabelRequest) -> list[Quote]:
        zone = self._zone(request)
        return [
            self._quote(rate, request, zone)
            for carrier in self.network.carriers
            for rate in carrier.rates()
            if rate.serves(zone)
        ]

    async def buy_label(
        self, request: LabelRequest, quote: Quote, *, idempotency_key: str
    ) -> Label:
        spec = self.network.carrier(quote.carrier)
        [rate] = [r for r in spec.rates() if r.service == quote.service]
        # priced from its own rate card, as a carrier would, not from what the caller says
        priced = self._quote(rate, request, self._zone(request))
        master = self._tracking_number(spec.tracking_prefix, idempotency_key)
        label = Label(
            carrier=priced.carrier,
            service=priced.service,
            tracking_number=master,
            package_tracking={
                p.package_id: f"{master}P{n:02d}" for n, p in enumerate(request.parcels, 1)
            },
            label_url=f"{LABEL_HOST}/{priced.carrier}/{master}.pdf",
            cost=priced.cost,
            estimated_delivery=priced.estimated_delivery,
        )
        asked = {"request": request.to_json(), "carrier": quote.carrier, "service": quote.service}
        return await self.ledger.remember(idempotency_key, asked, label)

    def _zone(self, request: LabelRequest) -> Zone:
        return zone_for(request.ship_from.country, request.ship_to.country, self.network.areas())

    def _quote(self, rate: ServiceRate, request: LabelRequest, zone: Zone) -> Quote:
        transit = rate.transit_days[zone]
        return Quote(
            carrier=rate.carrier,
            service=rate.service,
            cost=Money(
                amount_minor=rate.price_minor(zone, request.parcels),
                currency=self.network.currency,
            ),
            transit_days=transit,
            estimated_delivery=add_business_days(request.ship_date, transit),
        )

    def _tracking_number(self, prefix: str, key: str) -> str:
        # 16 hex digits: collisions stay negligible over many millions of labels
        digest = hashlib.sha256(f"{self.seed}:{key}".encode()).hexdigest()
        return f"{prefix}{digest[:16].upper()}"
