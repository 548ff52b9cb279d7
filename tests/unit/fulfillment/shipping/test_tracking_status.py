"""What a carrier scan changes and which events it causes (domain/shipment.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.fulfillment.shipping.domain.shipment import (
    Scan,
    ShipmentStatus,
    Tracking,
    apply_scan,
    exception_reason,
    from_the_future,
    label_key_for,
    shipment_id_for,
)

T0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
ETA = date(2025, 3, 6)
S = ShipmentStatus


def dispatched(status: ShipmentStatus = S.DISPATCHED, last: datetime | None = None) -> Tracking:
    return Tracking(status, ETA, last)


def test_ids_derive_from_the_packing() -> None:
    assert shipment_id_for("pack-1") == shipment_id_for("pack-1")
    assert shipment_id_for("pack-1") != shipment_id_for("pack-2")
    assert label_key_for("pack-1") == "label:pack-1"


@pytest.mark.parametrize(
    ("status", "delivered", "exception"),
    [
        ("in_transit", False, None),
        ("out_for_delivery", False, None),
        ("delivered", True, None),
        ("delivery_exception", False, "delivery_exception"),
        ("delayed", False, "delayed"),
        ("returned_to_sender", False, "returned_to_sender"),
    ],
)
def test_each_status_maps_to_its_events(
    status: str, delivered: bool, exception: str | None
) -> None:
    outcome = apply_scan(dispatched(), Scan(status, T0))  # type: ignore[arg-type]
    assert outcome.tracking.status == status
    assert outcome.delivered is delivered
    assert outcome.exception == exception
    assert outcome.tracking.last_scan_at == T0


def test_a_scan_with_a_new_eta_moves_it() -> None:
    later = date(2025, 3, 7)
    outcome = apply_scan(dispatched(), Scan("delayed", T0, later))
    assert outcome.tracking.estimated_delivery == later
    assert apply_scan(dispatched(), Scan("in_transit", T0)).tracking.estimated_delivery == ETA


def test_delivered_is_final() -> None:
    delivered = dispatched(S.DELIVERED, T0)
    for status in ("delivered", "in_transit", "delivery_exception", "returned_to_sender"):
        outcome = apply_scan(delivered, Scan(status, T0 + timedelta(hours=1)))  # type: ignore[arg-type]
        assert outcome.tracking == delivered
        assert not outcome.delivered and outcome.exception is None


def test_a_stale_scan_does_not_move_the_status_back() -> None:
    current = dispatched(S.OUT_FOR_DELIVERY, T0)
    stale = apply_scan(current, Scan("in_transit", T0 - timedelta(hours=2), date(2025, 3, 9)))
    assert stale.tracking == current  # status, ETA and last scan as they were
    late_problem = apply_scan(current, Scan("delayed", T0 - timedelta(hours=1)))
    assert late_problem.tracking.status == S.OUT_FOR_DELIVERY
    assert late_problem.exception == "delayed"  # still news: reported
    # a delivery reported late is still a delivery
    assert apply_scan(current, Scan("delivered", T0 - timedelta(hours=1))).delivered


def test_an_exception_followed_by_delivery() -> None:
    failed = apply_scan(dispatched(S.OUT_FOR_DELIVERY, T0), Scan("delivery_exception", T0))
    assert failed.tracking.status == S.DELIVERY_EXCEPTION
    again = apply_scan(failed.tracking, Scan("out_for_delivery", T0 + timedelta(days=1)))
    done = apply_scan(again.tracking, Scan("delivered", T0 + timedelta(days=1, hours=3)))
    assert done.delivered and done.tracking.status == S.DELIVERED


def test_no_scans_before_the_carrier_has_it() -> None:
    for status in (S.AWAITING_ORDER, S.CANCELLED):
        with pytest.raises(ValueError):
            apply_scan(Tracking(status, None, None), Scan("in_transit", T0))


def test_exception_reason_uses_the_carriers_words_or_a_default() -> None:
    assert exception_reason("delayed", "Storm at hub").message == "Storm at hub"
    reason = exception_reason("returned_to_sender", "")
    assert reason.code == "returned_to_sender" and reason.message


def test_a_scan_dated_beyond_the_clock_skew_is_from_the_future() -> None:
    skew = timedelta(minutes=5)
    assert not from_the_future(T0, T0, skew)
    assert not from_the_future(T0 + skew, T0, skew), "clocks may differ that much"
    assert not from_the_future(T0 - timedelta(days=3), T0, skew), "late reports are fine"
    assert from_the_future(T0 + skew + timedelta(seconds=1), T0, skew)
    assert from_the_future(datetime(2099, 1, 1, tzinfo=UTC), T0, skew)
