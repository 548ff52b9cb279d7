"""Business days: carriers promise and count transit in working days (Monday to Friday).

Public holidays are not modelled: a real carrier's quote already accounts for them.
"""

from __future__ import annotations

from datetime import date, timedelta

SATURDAY = 5


def is_business_day(day: date) -> bool:
    return day.weekday() < SATURDAY


def add_business_days(start: date, days: int) -> date:
    """The day ``days`` business days after ``start`` (``start`` itself for 0)."""
    if days < 0:
        raise ValueError("business days to add must not be negative")
    day = start
    added = 0
    while added < days:
        day += timedelta(days=1)
        if is_business_day(day):
            added += 1
    return day
