"""Rate shopping (domain/shopping.py): the cheapest quote that keeps the service level's
promise, else the fastest, flagged; and the choices the demo network makes per zone."""

from __future__ import annotations

from datetime import date

import pytest

from services.fulfillment.shipping.carrier import LabelRequest, Place
from services.fulfillment.shipping.domain.rating import Parcel
from services.fulfillment.shipping.domain.shopping import (
    SERVICE_LEVEL_DAYS,
    NoQuotes,
    Quote,
    promised_by,
    shop,
)
from services.fulfillment.shipping.network import load_carriers, load_warehouses
from services.fulfillment.shipping.simulated_carrier import MemoryLabelLedger, SimulatedCarrier
from shared.schemas.common import Money

MONDAY = date(2025, 3, 3)


def quote(carrier: str, service: str, cost: int, arrives: date, currency: str = "EUR") -> Quote:
    return Quote(
        carrier=carrier,
        service=service,
        cost=Money(amount_minor=cost, currency=currency),
        transit_days=(arrives - MONDAY).days,
        estimated_delivery=arrives,
    )


def test_service_level_promises() -> None:
    assert SERVICE_LEVEL_DAYS == {"standard": 5, "express": 2, "overnight": 1}
    assert promised_by(MONDAY, "standard") == date(2025, 3, 10)  # 5 business days
    assert promised_by(MONDAY, "express") == date(2025, 3, 5)
    assert promised_by(MONDAY, "overnight") == date(2025, 3, 4)
    assert promised_by(date(2025, 3, 7), "overnight") == date(2025, 3, 10)  # Friday -> Monday
    # a table from the settings
    assert promised_by(MONDAY, "express", {"standard": 5, "express": 3}) == date(2025, 3, 6)
    # an unknown level ships as standard rather than not at all
    assert promised_by(MONDAY, "teleport") == promised_by(MONDAY, "standard")


def test_cheapest_quote_that_arrives_in_time() -> None:
    deadline = date(2025, 3, 5)
    quotes = [
        quote("a", "slow_cheap", 300, date(2025, 3, 7)),  # cheapest, but late
        quote("b", "two_day", 900, date(2025, 3, 5)),
        quote("c", "express", 700, date(2025, 3, 4)),
        quote("d", "overnight", 1500, date(2025, 3, 4)),
    ]
    choice = shop(quotes, deadline)
    assert (choice.quote.carrier, choice.quote.service) == ("c", "express")
    assert choice.meets_promise
    assert choice.promised_by == deadline


def test_a_quote_arriving_on_the_deadline_meets_it() -> None:
    choice = shop([quote("a", "x", 500, date(2025, 3, 5))], date(2025, 3, 5))
    assert choice.meets_promise


def test_nothing_in_time_takes_the_fastest_and_flags_it() -> None:
    quotes = [
        quote("a", "ground", 300, date(2025, 3, 12)),
        quote("b", "air", 2000, date(2025, 3, 6)),
        quote("c", "sea", 100, date(2025, 3, 20)),
    ]
    choice = shop(quotes, date(2025, 3, 4))
    assert (choice.quote.carrier, choice.quote.service) == ("b", "air")
    assert not choice.meets_promise


def test_ties_are_broken_deterministically() -> None:
    on_time = date(2025, 3, 5)
    same_price = [
        quote("zeta", "x", 500, on_time),
        quote("alpha", "y", 500, date(2025, 3, 4)),  # same price, earlier: wins
        quote("alpha", "b", 500, on_time),
    ]
    assert shop(same_price, on_time).quote.service == "y"
    same_everything = [quote("zeta", "x", 500, on_time), quote("alpha", "b", 500, on_time)]
    for order in (same_everything, same_everything[::-1]):
        assert shop(order, on_time).quote.carrier == "alpha"
    # nothing in time, two equally fast: the cheaper, then by name
    late = [quote("b", "s", 900, date(2025, 3, 7)), quote("a", "s", 900, date(2025, 3, 7))]
    assert shop(late, MONDAY).quote.carrier == "a"


def test_no_quotes_and_mixed_currencies_are_refused() -> None:
    with pytest.raises(NoQuotes):
        shop([], MONDAY)
    with pytest.raises(ValueError, match="currencies"):
        shop([quote("a", "x", 1, MONDAY), quote("b", "y", 1, MONDAY, "USD")], MONDAY)


# --- the demo network (seed/carriers.json) ---

WAREHOUSES = load_warehouses()
CARRIER = SimulatedCarrier(load_carriers(), MemoryLabelLedger(), seed=1)


def request(warehouse: str, country: str) -> LabelRequest:
    return LabelRequest(
        reference="order-1",
        ship_from=WAREHOUSES[warehouse].place(),
        ship_to=Place("Ada", "1 Main St", "Town", "12345", country),
        parcels=(Parcel("p1", 200, 150, 100, 900),),  # 1 kg billable with every carrier
        ship_date=MONDAY,
    )


@pytest.mark.parametrize(
    ("warehouse", "country", "level", "chosen", "in_time"),
    [
        # domestic: the cheapest slow service is fast enough for standard
        ("WH-LON", "GB", "standard", ("eurolink", "economy"), True),
        ("WH-LON", "GB", "express", ("swiftpost", "two_day"), True),
        ("WH-LON", "GB", "overnight", ("eurolink", "express"), True),
        ("WH-NJ", "US", "standard", ("eurolink", "economy"), True),
        # near: EuroLink economy (6 days) is cheapest but misses the 5-day promise
        ("WH-BER", "FR", "standard", ("swiftpost", "ground"), True),
        ("WH-LON", "DE", "express", ("eurolink", "express"), True),
        # near, overnight: nothing makes it in one day; fastest, then cheapest
        ("WH-BER", "GB", "overnight", ("eurolink", "express"), False),
        # international: only the air services keep the standard promise
        ("WH-NJ", "DE", "standard", ("globalair", "priority"), True),
        ("WH-LON", "US", "overnight", ("globalair", "priority"), False),
    ],
)
async def test_demo_network_choices(
    warehouse: str, country: str, level: str, chosen: tuple[str, str], in_time: bool
) -> None:
    quotes = await CARRIER.rates(request(warehouse, country))
    choice = shop(quotes, promised_by(MONDAY, level))
    assert (choice.quote.carrier, choice.quote.service) == chosen
    assert choice.meets_promise is in_time


async def test_demo_network_serves_every_zone() -> None:
    for warehouse, country in [("WH-LON", "GB"), ("WH-LON", "FR"), ("WH-LON", "JP")]:
        assert await CARRIER.rates(request(warehouse, country))
