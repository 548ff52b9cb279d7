"""The simulated carrier (simulated_carrier.py): quotes from its rate card, and labels
that are the same for the same idempotency key. In-process ledger; no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.fulfillment.shipping.carrier import LabelRequest, Place
from services.fulfillment.shipping.domain.rating import Parcel
from services.fulfillment.shipping.domain.shopping import Quote
from services.fulfillment.shipping.network import load_carriers, load_warehouses
from services.fulfillment.shipping.simulated_carrier import MemoryLabelLedger, SimulatedCarrier
from shared.schemas.common import Money

MONDAY = date(2025, 3, 3)
NETWORK = load_carriers()


@pytest.fixture
def ledger() -> MemoryLabelLedger:
    return MemoryLabelLedger()


@pytest.fixture
def carrier(ledger: MemoryLabelLedger) -> SimulatedCarrier:
    return SimulatedCarrier(NETWORK, ledger, seed=42)


def request(country: str = "GB", weight: int = 900) -> LabelRequest:
    return LabelRequest(
        reference="order-1",
        ship_from=load_warehouses()["WH-LON"].place(),
        ship_to=Place("Ada", "1 Main St", "Town", "12345", country),
        parcels=(Parcel("p1", 300, 200, 100, weight), Parcel("p2", 200, 200, 100, 400)),
        ship_date=MONDAY,
    )


async def cheapest(carrier: SimulatedCarrier, req: LabelRequest) -> Quote:
    return min(await carrier.rates(req), key=lambda q: q.cost.amount_minor)


async def test_quotes_are_priced_per_zone_and_dated_in_business_days(
    carrier: SimulatedCarrier,
) -> None:
    domestic = {(q.carrier, q.service): q for q in await carrier.rates(request("GB"))}
    ground = domestic["swiftpost", "ground"]
    # p1: 900 g, but 30 x 20 x 10 cm / 5000 = 1.2 kg billable -> 2 kg; p2: 0.8 kg -> 1 kg
    assert ground.cost == Money(amount_minor=(450 + 2 * 60) + (450 + 60), currency="EUR")
    # EuroLink divides by 6000: p1 is 1 kg billable there
    economy = domestic["eurolink", "economy"]
    assert economy.cost == Money(amount_minor=2 * (390 + 70), currency="EUR")
    assert ground.transit_days == 3
    assert ground.estimated_delivery == date(2025, 3, 6)
    assert ("globalair", "economy") not in domestic  # it does not serve domestic
    international = {(q.carrier, q.service) for q in await carrier.rates(request("JP"))}
    assert ("swiftpost", "overnight") not in international
    assert ("globalair", "priority") in international


async def test_a_label_has_a_master_and_one_number_per_package(
    carrier: SimulatedCarrier,
) -> None:
    req = request()
    quote = await cheapest(carrier, req)
    label = await carrier.buy_label(req, quote, idempotency_key="label:pack-1")
    assert (label.carrier, label.service) == (quote.carrier, quote.service)
    assert label.tracking_number.startswith("ELP")
    assert set(label.package_tracking) == {"p1", "p2"}
    numbers = {label.tracking_number, *label.package_tracking.values()}
    assert len(numbers) == 3
    assert label.cost == quote.cost and label.estimated_delivery == quote.estimated_delivery
    assert label.label_url.endswith(f"{label.tracking_number}.pdf")


async def test_the_same_key_gets_the_first_label(
    carrier: SimulatedCarrier, ledger: MemoryLabelLedger
) -> None:
    req = request()
    quotes = await carrier.rates(req)
    first = await carrier.buy_label(req, quotes[0], idempotency_key="label:pack-1")
    again = await carrier.buy_label(req, quotes[0], idempotency_key="label:pack-1")
    # even asked for another service (a retry a day later may shop differently)
    other = await carrier.buy_label(
        replace(req, ship_date=date(2025, 3, 4)), quotes[-1], idempotency_key="label:pack-1"
    )
    assert first == again == other
    assert ledger.calls["label:pack-1"] == 3
    assert len(ledger.labels) == 1
    another = await carrier.buy_label(req, quotes[0], idempotency_key="label:pack-2")
    assert another.tracking_number != first.tracking_number


async def test_tracking_numbers_are_deterministic_by_seed() -> None:
    req = request()

    async def number(seed: int) -> str:
        carrier = SimulatedCarrier(NETWORK, MemoryLabelLedger(), seed=seed)
        label = await carrier.buy_label(req, await cheapest(carrier, req), idempotency_key="k")
        return label.tracking_number

    assert await number(1) == await number(1)
    assert await number(1) != await number(2)


async def test_the_label_is_priced_from_the_rate_card_not_the_callers_quote(
    carrier: SimulatedCarrier,
) -> None:
    req = request()
    honest = await cheapest(carrier, req)
    wishful = replace(honest, cost=Money(amount_minor=1, currency="EUR"))
    label = await carrier.buy_label(req, wishful, idempotency_key="k")
    assert label.cost == honest.cost


def test_carriers_and_network_file() -> None:
    carrier = SimulatedCarrier(NETWORK, MemoryLabelLedger(), seed=0)
    assert carrier.carriers() == {"swiftpost", "eurolink", "globalair"}
    assert NETWORK.currency == "EUR"
    warehouses = load_warehouses()
    assert {w: (h.country, h.region) for w, h in warehouses.items()} == {
        "WH-LON": ("GB", "GB"),
        "WH-BER": ("DE", "DE"),
        "WH-NJ": ("US", "US-NJ"),
    }
