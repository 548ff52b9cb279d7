"""Rate shopping: the cheapest quote that delivers by the date the order's service level
promises; if none does, the fastest, flagged as missing the promise.

The promise counts from the day the order was placed (what the customer was told), the
quotes from the day the parcel ships, so a packing that took long leaves less room:
a standard order packed on day 4 may need an express service to arrive by day 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from services.fulfillment.shipping.domain.calendar import add_business_days
from shared.schemas.common import Money

# Business days from placement to delivery that each service level promises. The service
# reads it from CONVEYOR_SHIPPING_SERVICE_LEVEL_DAYS, with this as the default.
SERVICE_LEVEL_DAYS: Mapping[str, int] = {"standard": 5, "express": 2, "overnight": 1}
DEFAULT_SERVICE_LEVEL = "standard"


@dataclass(frozen=True)
class Quote:
    """A carrier's offer for one service: what it costs and when it arrives."""

    carrier: str
    service: str
    cost: Money
    transit_days: int
    estimated_delivery: date


@dataclass(frozen=True)
class Choice:
    quote: Quote
    promised_by: date
    meets_promise: bool  # False: nothing could make it; this is the fastest


class NoQuotes(Exception):
    """No carrier serves this destination: a configuration problem, for a human."""


def known_service_level(service_level: str, days_by_level: Mapping[str, int]) -> str:
    """An unknown level (the order service validates, so: an old or foreign event) ships as
    the default level rather than not at all."""
    return service_level if service_level in days_by_level else DEFAULT_SERVICE_LEVEL


def promised_by(
    placed_on: date,
    service_level: str,
    days_by_level: Mapping[str, int] = SERVICE_LEVEL_DAYS,
) -> date:
    level = known_service_level(service_level, days_by_level)
    return add_business_days(placed_on, days_by_level[level])


def _cheapest_first(q: Quote) -> tuple[int, date, str, str]:
    return (q.cost.amount_minor, q.estimated_delivery, q.carrier, q.service)


def _fastest_first(q: Quote) -> tuple[date, int, str, str]:
    return (q.estimated_delivery, q.cost.amount_minor, q.carrier, q.service)


def shop(quotes: Sequence[Quote], deadline: date) -> Choice:
    """Cheapest quote arriving by ``deadline``; else the fastest. Ties: earlier delivery
    (resp. lower cost), then carrier and service name, so the choice is deterministic."""
    if not quotes:
        raise NoQuotes("no carrier service serves this shipment")
    currencies = {q.cost.currency for q in quotes}
    if len(currencies) > 1:
        raise ValueError(f"quotes in several currencies cannot be compared: {sorted(currencies)}")
    in_time = [q for q in quotes if q.estimated_delivery <= deadline]
    if in_time:
        return Choice(min(in_time, key=_cheapest_first), deadline, meets_promise=True)
    return Choice(min(quotes, key=_fastest_first), deadline, meets_promise=False)
