"""Risk rules for placed orders: pure, no I/O, no clock (times come from the events).

An order is scored against:

- **amount**: a single order over the per-currency limit → review (``amount_over_limit``);
- **velocity**: more than ``velocity_review`` orders by the same customer within one window
  (default 1 hour) of this order → review, more than ``velocity_reject`` → reject
  (``velocity_orders``);
- **spend**: the customer's spend in the window (same currency, this order included, at
  least two orders) over the per-currency limit → review (``velocity_spend``);
- **address mismatch**: billing country ≠ shipping country → review (``address_mismatch``).

The verdict is the strongest reason's (reject > review > pass); the score is the sum of the
reasons' points, capped at 100. The window state (:class:`RiskState`) is approximate and
rebuildable: it lives in memory only and is rebuilt by replaying ``order.events``
(see docs/risk.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.schemas.common import Reason

Verdict = Literal["pass", "review", "reject"]
_SEVERITY: dict[Verdict, int] = {"pass": 0, "review": 1, "reject": 2}

# --- defaults (each one can be overridden by a CONVEYOR_RISK_* setting, see app.py) ---

DEFAULT_WINDOW = timedelta(hours=1)
#: window entries are kept this much longer than the window, for events arriving late
DEFAULT_GRACE = timedelta(minutes=10)
#: more than this many orders by one customer in the window → review
DEFAULT_VELOCITY_REVIEW = 3
#: more than this many → reject
DEFAULT_VELOCITY_REJECT = 10
#: a single order above this (minor units) → review. Currencies not listed have no limit.
DEFAULT_ORDER_LIMITS_MINOR: Mapping[str, int] = {
    "EUR": 200_000,  # 2,000.00
    "USD": 200_000,
    "GBP": 200_000,
    "CHF": 200_000,
    "CAD": 250_000,
    "AUD": 300_000,
    "JPY": 300_000,  # ¥300,000 (JPY has no minor unit)
}
#: a customer's spend in the window above this (minor units) → review
DEFAULT_SPEND_LIMITS_MINOR: Mapping[str, int] = {
    "EUR": 500_000,  # 5,000.00
    "USD": 500_000,
    "GBP": 500_000,
    "CHF": 500_000,
    "CAD": 600_000,
    "AUD": 750_000,
    "JPY": 750_000,
}

#: points each reason adds to the score (capped at 100)
POINTS = {
    "amount_over_limit": 40,
    "velocity_spend": 40,
    "address_mismatch": 30,
    "velocity_orders.review": 40,
    "velocity_orders.reject": 90,
}


@dataclass(frozen=True)
class Thresholds:
    window: timedelta = DEFAULT_WINDOW
    grace: timedelta = DEFAULT_GRACE
    velocity_review: int = DEFAULT_VELOCITY_REVIEW
    velocity_reject: int = DEFAULT_VELOCITY_REJECT
    order_limits_minor: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_ORDER_LIMITS_MINOR)
    )
    spend_limits_minor: Mapping[str, int] = field(
        default_factory=lambda: dict(DEFAULT_SPEND_LIMITS_MINOR)
    )

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("the risk window must be positive")
        if self.grace < timedelta(0):
            raise ValueError("the grace period cannot be negative")
        if not 1 <= self.velocity_review < self.velocity_reject:
            raise ValueError("need 1 <= velocity_review < velocity_reject")


@dataclass(frozen=True)
class OrderFacts:
    """What the rules need from an ``order.placed`` event."""

    order_id: str
    customer_id: str
    occurred_at: datetime
    total_minor: int
    currency: str
    shipping_country: str
    billing_country: str | None = None


@dataclass(frozen=True)
class WindowStats:
    orders: int
    spend_minor: int  # in the order's currency


@dataclass(frozen=True)
class Assessment:
    order_id: str
    customer_id: str
    verdict: Verdict
    score: int
    reasons: tuple[Reason, ...]
    stats: WindowStats
    assessed_at: datetime


def evaluate(facts: OrderFacts, stats: WindowStats, thresholds: Thresholds) -> list[Reason]:
    """The reasons an order raises, given its customer's window (this order included)."""
    reasons: list[Reason] = []
    currency = facts.currency
    order_limit = thresholds.order_limits_minor.get(currency)
    if order_limit is not None and facts.total_minor > order_limit:
        reasons.append(
            Reason(
                code="amount_over_limit",
                message=f"order total {facts.total_minor} {currency} (minor) is over the "
                f"single-order limit {order_limit}",
                field="amounts.total_minor",
            )
        )
    if facts.billing_country and facts.billing_country != facts.shipping_country:
        reasons.append(
            Reason(
                code="address_mismatch",
                message=f"billing country {facts.billing_country} differs from shipping "
                f"country {facts.shipping_country}",
                field="billing_address.country",
            )
        )
    window = _describe(thresholds.window)
    if stats.orders > thresholds.velocity_review:
        limit = (
            thresholds.velocity_reject
            if stats.orders > thresholds.velocity_reject
            else thresholds.velocity_review
        )
        reasons.append(
            Reason(
                code="velocity_orders",
                message=f"{stats.orders} orders by this customer in {window}, more than {limit}",
                field="customer.customer_id",
            )
        )
    spend_limit = thresholds.spend_limits_minor.get(currency)
    if spend_limit is not None and stats.orders > 1 and stats.spend_minor > spend_limit:
        reasons.append(
            Reason(
                code="velocity_spend",
                message=f"{stats.spend_minor} {currency} (minor) spent by this customer in "
                f"{window}, more than {spend_limit}",
                field="amounts.total_minor",
            )
        )
    return reasons


def verdict_and_score(
    reasons: list[Reason], stats: WindowStats, thresholds: Thresholds
) -> tuple[Verdict, int]:
    verdict: Verdict = "pass"
    score = 0
    for reason in reasons:
        severity: Verdict = "review"
        key = reason.code
        if reason.code == "velocity_orders":
            severity = "reject" if stats.orders > thresholds.velocity_reject else "review"
            key = f"velocity_orders.{severity}"
        score += POINTS[key]
        if _SEVERITY[severity] > _SEVERITY[verdict]:
            verdict = severity
    return verdict, min(score, 100)


@dataclass
class _Entry:
    occurred_at: datetime
    total_minor: int
    currency: str
    assessment: Assessment | None = None


class RiskState:
    """Recent orders per customer, for sliding-window counts and spend.

    Keyed by order id, so a redelivered order is counted once and gets the assessment it got
    the first time. Entries older than the newest order seen minus (window + grace) are
    dropped. Memory only: approximate, rebuilt by replaying ``order.events``.
    """

    PRUNE_EVERY = 1000  # records between full prunes

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self._orders: dict[str, dict[str, _Entry]] = {}
        self._watermark: datetime | None = None
        self._since_prune = 0

    # --- reading -------------------------------------------------------------------------

    @property
    def customers(self) -> int:
        return len(self._orders)

    @property
    def orders(self) -> int:
        return sum(len(entries) for entries in self._orders.values())

    def stats(self, customer_id: str, at: datetime, currency: str) -> WindowStats:
        """Orders and spend (in ``currency``) by the customer within one window of ``at``.

        Both sides: ``order.events`` is keyed by order id, so one customer's orders come from
        different partitions in no fixed order. An order therefore also counts the orders
        placed up to a window *after* it that were processed before it; whichever order of a
        burst is processed last sees the whole burst.
        """
        window = self.thresholds.window
        count = spend = 0
        for entry in self._orders.get(customer_id, {}).values():
            if abs(entry.occurred_at - at) < window:
                count += 1
                if entry.currency == currency:
                    spend += entry.total_minor
        return WindowStats(orders=count, spend_minor=spend)

    # --- writing -------------------------------------------------------------------------

    def record(self, facts: OrderFacts) -> None:
        """Remember an order without assessing it (state rebuild by replay)."""
        self._add(facts)
        self._maybe_prune()

    def assess(self, facts: OrderFacts, now: datetime) -> Assessment:
        """Record the order and assess it; a repeated order gets its first assessment."""
        entry = self._orders.get(facts.customer_id, {}).get(facts.order_id)
        if entry is not None and entry.assessment is not None:
            return entry.assessment
        entry = self._add(facts)
        stats = self.stats(facts.customer_id, facts.occurred_at, facts.currency)
        reasons = evaluate(facts, stats, self.thresholds)
        verdict, score = verdict_and_score(reasons, stats, self.thresholds)
        assessment = Assessment(
            order_id=facts.order_id,
            customer_id=facts.customer_id,
            verdict=verdict,
            score=score,
            reasons=tuple(reasons),
            stats=stats,
            assessed_at=now,
        )
        entry.assessment = assessment
        self._maybe_prune()
        return assessment

    def _add(self, facts: OrderFacts) -> _Entry:
        entries = self._orders.setdefault(facts.customer_id, {})
        entry = entries.get(facts.order_id)
        if entry is None:
            entry = entries[facts.order_id] = _Entry(
                facts.occurred_at, facts.total_minor, facts.currency
            )
        if self._watermark is None or facts.occurred_at > self._watermark:
            self._watermark = facts.occurred_at
        self._since_prune += 1
        return entry

    def _maybe_prune(self) -> None:
        if self._since_prune >= self.PRUNE_EVERY:
            self.prune()

    def prune(self) -> int:
        """Drop entries too old to matter; returns how many were dropped."""
        self._since_prune = 0
        if self._watermark is None:
            return 0
        horizon = self._watermark - self.thresholds.window - self.thresholds.grace
        dropped = 0
        for customer_id in list(self._orders):
            entries = self._orders[customer_id]
            for order_id in [o for o, e in entries.items() if e.occurred_at <= horizon]:
                del entries[order_id]
                dropped += 1
            if not entries:
                del self._orders[customer_id]
        return dropped


def _describe(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "1 hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
