"""Distance zones, billable weight and a service's price (domain/rating.py)."""

from __future__ import annotations

import pytest

from services.fulfillment.shipping.domain.rating import (
    Parcel,
    ServiceRate,
    billable_grams,
    dimensional_grams,
    started_kilograms,
    zone_for,
)

AREAS = [frozenset({"GB", "DE", "FR"}), frozenset({"US", "CA"})]


def parcel(length: int, width: int, height: int, grams: int, package_id: str = "p1") -> Parcel:
    return Parcel(package_id, length, width, height, grams)


@pytest.mark.parametrize(
    ("origin", "destination", "zone"),
    [
        ("GB", "GB", "domestic"),
        ("US", "US", "domestic"),
        ("GB", "DE", "near"),
        ("US", "CA", "near"),
        ("GB", "US", "international"),
        ("DE", "JP", "international"),
        ("JP", "KR", "international"),  # two countries in no area
    ],
)
def test_zone_from_warehouse_and_destination_country(
    origin: str, destination: str, zone: str
) -> None:
    assert zone_for(origin, destination, AREAS) == zone


def test_dimensional_weight_is_volume_over_divisor() -> None:
    # 40 x 30 x 20 cm = 24,000 cm3; / 5000 cm3/kg = 4.8 kg
    assert dimensional_grams(parcel(400, 300, 200, 500)) == 4800
    # a carrier with a 6000 divisor bills the same box lighter: 4 kg
    assert dimensional_grams(parcel(400, 300, 200, 500), 6000) == 4000
    # rounded up to the gram
    assert dimensional_grams(parcel(101, 101, 100, 1)) == 205  # 204.02 g


def test_billable_weight_is_the_larger_of_actual_and_dimensional() -> None:
    light_and_bulky = parcel(400, 300, 200, 500)
    heavy_and_small = parcel(100, 100, 100, 3000)  # 1,000 cm3 -> 200 g dimensional
    assert billable_grams(light_and_bulky) == 4800
    assert billable_grams(heavy_and_small) == 3000


@pytest.mark.parametrize(("grams", "kg"), [(1, 1), (999, 1), (1000, 1), (1001, 2), (4800, 5)])
def test_charged_per_started_kilogram(grams: int, kg: int) -> None:
    assert started_kilograms(grams) == kg


def test_price_per_parcel_from_zone_and_billable_weight() -> None:
    rate = ServiceRate(
        carrier="c",
        service="ground",
        base_minor={"domestic": 400, "near": 1000},
        per_kg_minor={"domestic": 50, "near": 200},
        transit_days={"domestic": 2, "near": 4},
    )
    bulky = parcel(400, 300, 200, 500, "a")  # 4.8 kg billable -> 5 kg
    small = parcel(100, 100, 100, 800, "b")  # 0.8 kg -> 1 kg
    assert rate.price_minor("domestic", [small]) == 400 + 50
    assert rate.price_minor("domestic", [bulky, small]) == (400 + 5 * 50) + (400 + 50)
    assert rate.price_minor("near", [bulky]) == 1000 + 5 * 200
    assert not rate.serves("international")
    with pytest.raises(ValueError, match="does not serve"):
        rate.price_minor("international", [small])
