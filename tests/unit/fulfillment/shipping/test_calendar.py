"""Business days (domain/calendar.py)."""

from __future__ import annotations

from datetime import date

import pytest

from services.fulfillment.shipping.domain.calendar import add_business_days

MONDAY = date(2025, 3, 3)
FRIDAY = date(2025, 3, 7)
SATURDAY = date(2025, 3, 8)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (MONDAY, 0, MONDAY),
        (MONDAY, 1, date(2025, 3, 4)),
        (MONDAY, 4, FRIDAY),
        (MONDAY, 5, date(2025, 3, 10)),  # over the weekend
        (FRIDAY, 1, date(2025, 3, 10)),
        (SATURDAY, 1, date(2025, 3, 10)),
        (SATURDAY, 0, SATURDAY),
    ],
)
def test_weekends_do_not_count(start: date, days: int, expected: date) -> None:
    assert add_business_days(start, days) == expected


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_business_days(MONDAY, -1)
