"""Risk rules and windows (services/risk/domain.py). Pure: no broker, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.risk.domain import (
    DEFAULT_ORDER_LIMITS_MINOR,
    Assessment,
    OrderFacts,
    RiskState,
    Thresholds,
)
from services.risk.handlers import facts_from
from tests.unit.risk.orders import placed

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=1)


def facts(
    customer: str = "cust-1",
    *,
    at: datetime = T0,
    total_minor: int = 4_500,
    currency: str = "EUR",
    ship_to: str = "GB",
    bill_to: str | None = None,
    order_id: str | None = None,
) -> OrderFacts:
    return facts_from(
        placed(
            customer,
            occurred_at=at,
            total_minor=total_minor,
            currency=currency,
            ship_to=ship_to,
            bill_to=bill_to,
            order_id=order_id,
        )
    )


def codes(assessment: Assessment) -> list[str]:
    return [reason.code for reason in assessment.reasons]


def burst(state: RiskState, count: int, customer: str = "cust-1") -> list[Assessment]:
    """``count`` orders by one customer, one minute apart, assessed in order."""
    return [state.assess(facts(customer, at=T0 + timedelta(minutes=i)), NOW) for i in range(count)]


# --- pass --------------------------------------------------------------------------------


def test_an_ordinary_order_passes() -> None:
    result = RiskState().assess(facts(bill_to="GB"), NOW)
    assert (result.verdict, result.score, result.reasons) == ("pass", 0, ())
    assert result.stats.orders == 1
    assert result.assessed_at == NOW


def test_facts_are_read_from_order_placed() -> None:
    order = placed("c-9", total_minor=123, currency="USD", ship_to="US", bill_to="CA")
    found = facts_from(order)
    assert (found.customer_id, found.order_id) == ("c-9", order.order_id)
    assert (found.total_minor, found.currency) == (123, "USD")
    assert (found.shipping_country, found.billing_country) == ("US", "CA")
    assert facts_from(placed(bill_to=None)).billing_country is None


# --- amount ------------------------------------------------------------------------------


def test_an_order_over_the_currency_limit_goes_to_review() -> None:
    limit = DEFAULT_ORDER_LIMITS_MINOR["EUR"]
    result = RiskState().assess(facts(total_minor=limit + 1), NOW)
    assert result.verdict == "review"
    assert codes(result) == ["amount_over_limit"]
    assert result.reasons[0].field == "amounts.total_minor"
    assert result.score == 40


def test_an_order_exactly_at_the_limit_passes() -> None:
    limit = DEFAULT_ORDER_LIMITS_MINOR["EUR"]
    assert RiskState().assess(facts(total_minor=limit), NOW).verdict == "pass"


def test_limits_are_per_currency() -> None:
    state = RiskState(Thresholds(order_limits_minor={"EUR": 1_000}, spend_limits_minor={}))
    assert state.assess(facts("a", total_minor=1_001, currency="EUR"), NOW).verdict == "review"
    assert state.assess(facts("b", total_minor=1_001, currency="USD"), NOW).verdict == "pass"


# --- address mismatch --------------------------------------------------------------------


def test_billing_country_different_from_shipping_country_goes_to_review() -> None:
    result = RiskState().assess(facts(ship_to="GB", bill_to="FR"), NOW)
    assert result.verdict == "review"
    assert codes(result) == ["address_mismatch"]
    assert result.reasons[0].field == "billing_address.country"
    assert "FR" in result.reasons[0].message and "GB" in result.reasons[0].message


def test_no_billing_address_is_not_a_mismatch() -> None:
    assert RiskState().assess(facts(bill_to=None), NOW).verdict == "pass"


# --- velocity ----------------------------------------------------------------------------


def test_more_than_the_review_count_in_the_window_goes_to_review() -> None:
    results = burst(RiskState(Thresholds(velocity_review=3, velocity_reject=10)), 4)
    assert [r.verdict for r in results] == ["pass", "pass", "pass", "review"]
    assert codes(results[-1]) == ["velocity_orders"]
    assert results[-1].stats.orders == 4


def test_far_more_than_the_review_count_is_rejected() -> None:
    results = burst(RiskState(Thresholds(velocity_review=3, velocity_reject=10)), 11)
    assert [r.verdict for r in results] == ["pass"] * 3 + ["review"] * 7 + ["reject"]
    assert results[-1].score == 90
    assert codes(results[-1]) == ["velocity_orders"]
    assert "11 orders" in results[-1].reasons[0].message


def test_velocity_is_per_customer() -> None:
    state = RiskState(Thresholds(velocity_review=1, velocity_reject=5))
    assert state.assess(facts("alice"), NOW).verdict == "pass"
    assert state.assess(facts("bob"), NOW).verdict == "pass"
    assert state.assess(facts("alice", at=T0 + timedelta(minutes=1)), NOW).verdict == "review"


def test_a_burst_processed_out_of_order_is_still_caught() -> None:
    """Orders come from different partitions: the last one processed sees the whole burst."""
    state = RiskState(Thresholds(velocity_review=3, velocity_reject=10))
    times = [T0 + timedelta(minutes=m) for m in (3, 0, 2, 1)]  # newest first
    results = [state.assess(facts(at=t), NOW) for t in times]
    assert [r.stats.orders for r in results] == [1, 2, 3, 4]
    assert results[-1].verdict == "review"


def test_spend_in_the_window_over_the_limit_goes_to_review() -> None:
    state = RiskState(
        Thresholds(order_limits_minor={"EUR": 2_000}, spend_limits_minor={"EUR": 5_000})
    )
    results = [
        state.assess(facts(at=T0 + timedelta(minutes=i), total_minor=1_900), NOW) for i in range(3)
    ]
    assert [r.verdict for r in results] == ["pass", "pass", "review"]
    assert codes(results[-1]) == ["velocity_spend"]
    assert results[-1].stats.spend_minor == 5_700


def test_spend_counts_only_the_orders_currency() -> None:
    state = RiskState(Thresholds(spend_limits_minor={"EUR": 5_000}))
    state.assess(facts(total_minor=4_000, currency="USD"), NOW)
    result = state.assess(facts(at=T0 + timedelta(minutes=1), total_minor=4_000), NOW)
    assert (result.stats.orders, result.stats.spend_minor) == (2, 4_000)
    assert result.verdict == "pass"


# --- window expiry -----------------------------------------------------------------------


def test_orders_outside_the_window_do_not_count() -> None:
    state = RiskState(Thresholds(window=timedelta(hours=1), velocity_review=1))
    state.assess(facts(at=T0), NOW)
    later = state.assess(facts(at=T0 + timedelta(minutes=61)), NOW)
    assert (later.stats.orders, later.verdict) == (1, "pass")
    within = state.assess(facts(at=T0 + timedelta(minutes=100)), NOW)
    assert (within.stats.orders, within.verdict) == (2, "review")


def test_expired_entries_are_pruned_from_memory() -> None:
    state = RiskState(Thresholds(window=timedelta(hours=1), grace=timedelta(minutes=10)))
    for i in range(3):
        state.record(facts(f"c{i}", at=T0))
    state.record(facts("late", at=T0 + timedelta(minutes=69)))
    assert state.prune() == 0  # within window + grace of the newest order
    state.record(facts("later", at=T0 + timedelta(minutes=71)))
    assert state.prune() == 3
    assert (state.customers, state.orders) == (2, 2)


def test_pruning_happens_on_its_own_as_orders_arrive() -> None:
    state = RiskState(Thresholds(window=timedelta(minutes=1), grace=timedelta(0)))
    for i in range(RiskState.PRUNE_EVERY * 2):
        state.record(facts(f"c{i}", at=T0 + timedelta(seconds=i)))
    assert state.orders <= RiskState.PRUNE_EVERY + 60


# --- redelivery and replay ---------------------------------------------------------------


def test_a_redelivered_order_is_counted_once_and_keeps_its_assessment() -> None:
    state = RiskState(Thresholds(velocity_review=1, velocity_reject=5))
    first = state.assess(facts(order_id="ord-1"), NOW)
    again = state.assess(facts(order_id="ord-1"), NOW + timedelta(minutes=5))
    assert again == first
    assert state.orders == 1


def test_replayed_orders_count_without_being_assessed() -> None:
    state = RiskState(Thresholds(velocity_review=3, velocity_reject=10))
    for i in range(3):
        state.record(facts(at=T0 + timedelta(minutes=i)))
    result = state.assess(facts(at=T0 + timedelta(minutes=3)), NOW)
    assert (result.stats.orders, result.verdict) == (4, "review")


def test_an_order_replayed_then_delivered_again_is_counted_once() -> None:
    state = RiskState(Thresholds(velocity_review=1, velocity_reject=5))
    state.record(facts(order_id="ord-1"))
    result = state.assess(facts(order_id="ord-1"), NOW)
    assert (result.stats.orders, result.verdict) == (1, "pass")


# --- score and thresholds ----------------------------------------------------------------


def test_reasons_add_up_and_the_score_is_capped_at_100() -> None:
    state = RiskState(Thresholds(velocity_review=1, velocity_reject=2))
    burst(state, 2)
    result = state.assess(facts(at=T0 + timedelta(minutes=5), total_minor=10**7, bill_to="FR"), NOW)
    assert codes(result) == [
        "amount_over_limit",
        "address_mismatch",
        "velocity_orders",
        "velocity_spend",
    ]
    assert (result.verdict, result.score) == ("reject", 100)


@pytest.mark.parametrize(
    "settings",
    [
        {"velocity_review": 5, "velocity_reject": 5},
        {"velocity_review": 0, "velocity_reject": 5},
        {"window": timedelta(0)},
        {"grace": timedelta(seconds=-1)},
    ],
)
def test_nonsensical_thresholds_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**settings)  # type: ignore[arg-type]
