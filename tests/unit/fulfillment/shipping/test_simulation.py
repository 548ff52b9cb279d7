"""The simulated carrier's scan plan (domain/simulation.py): deterministic by seed."""

from __future__ import annotations

from services.fulfillment.shipping.domain.simulation import (
    PlannedScan,
    carrier_event_id,
    plan,
)


def statuses(scans: list[PlannedScan]) -> list[str]:
    return [s.status for s in scans]


def test_default_plan_is_the_happy_path() -> None:
    scans = plan(42, "ship-1")
    assert statuses(scans) == ["in_transit", "out_for_delivery", "delivered"]
    assert [s.at_destination for s in scans] == [False, True, True]
    assert all(s.eta_delay_days == 0 for s in scans)


def test_certain_delay_and_failed_attempt() -> None:
    scans = plan(42, "ship-1", delay_probability=1.0, exception_probability=1.0)
    assert statuses(scans) == [
        "in_transit",
        "delayed",
        "out_for_delivery",
        "delivery_exception",
        "out_for_delivery",
        "delivered",
    ]
    # each problem pushes the ETA back one business day, for every later scan
    assert [s.eta_delay_days for s in scans] == [0, 1, 1, 2, 2, 2]


def test_same_seed_same_plan_and_the_seed_matters() -> None:
    ids = [f"ship-{n}" for n in range(200)]

    def plans(seed: int) -> list[list[str]]:
        return [
            statuses(plan(seed, i, delay_probability=0.3, exception_probability=0.2)) for i in ids
        ]

    assert plans(7) == plans(7)
    assert plans(7) != plans(8)
    delayed = sum("delayed" in p for p in plans(7))
    assert 30 <= delayed <= 90  # about 30% of 200


def test_plans_survive_their_json_round_trip() -> None:
    scans = plan(1, "s", delay_probability=1.0)
    assert [PlannedScan.from_json(s.to_json()) for s in scans] == scans


def test_carrier_event_ids_are_stable_per_step() -> None:
    assert carrier_event_id("SWP1", 0) == carrier_event_id("SWP1", 0)
    assert len({carrier_event_id("SWP1", n) for n in range(6)}) == 6
