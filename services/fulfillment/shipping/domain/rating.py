"""What a carrier charges and how long it takes: distance zones, billable weight, and one
service's price and transit time for a set of parcels.

Carriers bill each parcel by the larger of its actual weight and its *dimensional*
weight (the space it takes in the van: length x width x height / a divisor), rounded up
to the started kilogram, at a base price plus a price per kilogram that grow with the
distance zone between the warehouse and the destination.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Zone = Literal["domestic", "near", "international"]
ZONES: tuple[Zone, ...] = ("domestic", "near", "international")

# cm³ per kg: the industry's usual divisor for parcels
DEFAULT_DIM_DIVISOR = 5000


def zone_for(
    origin_country: str, destination_country: str, near_areas: Iterable[frozenset[str]]
) -> Zone:
    """Domestic within one country, near within one area (e.g. Europe), else international."""
    if origin_country == destination_country:
        return "domestic"
    if any(origin_country in area and destination_country in area for area in near_areas):
        return "near"
    return "international"


@dataclass(frozen=True)
class Parcel:
    """One box as the carrier measures it."""

    package_id: str
    length_mm: int
    width_mm: int
    height_mm: int
    weight_grams: int


def dimensional_grams(parcel: Parcel, dim_divisor: int = DEFAULT_DIM_DIVISOR) -> int:
    """Volume in cm³ / divisor (cm³ per kg), in grams, rounded up.

    mm³ / 1000 = cm³; cm³ / divisor = kg; kg * 1000 = g — the thousands cancel out.
    """
    volume_mm3 = parcel.length_mm * parcel.width_mm * parcel.height_mm
    return math.ceil(volume_mm3 / dim_divisor)


def billable_grams(parcel: Parcel, dim_divisor: int = DEFAULT_DIM_DIVISOR) -> int:
    return max(parcel.weight_grams, dimensional_grams(parcel, dim_divisor))


def started_kilograms(grams: int) -> int:
    """Carriers charge per started kilogram, at least one."""
    return max(1, math.ceil(grams / 1000))


@dataclass(frozen=True)
class ServiceRate:
    """One carrier service's price list and transit times; a missing zone is not served."""

    carrier: str
    service: str
    base_minor: Mapping[Zone, int]
    per_kg_minor: Mapping[Zone, int]
    transit_days: Mapping[Zone, int]
    dim_divisor: int = DEFAULT_DIM_DIVISOR

    def serves(self, zone: Zone) -> bool:
        return zone in self.base_minor and zone in self.per_kg_minor and zone in self.transit_days

    def price_minor(self, zone: Zone, parcels: Iterable[Parcel]) -> int:
        """Per parcel: base + per started kilogram of billable weight; summed."""
        if not self.serves(zone):
            raise ValueError(f"{self.carrier}/{self.service} does not serve zone {zone}")
        return sum(
            self.base_minor[zone]
            + self.per_kg_minor[zone] * started_kilograms(billable_grams(p, self.dim_divisor))
            for p in parcels
        )
