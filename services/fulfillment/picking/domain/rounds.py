"""The orders a run of events is about, their allocation rounds, and the rules for noting
each event in memory. Pure.

``order.confirmed`` and the allocation rounds (``inventory.reserved``, then each
``inventory.backorder_allocated``) arrive in either order. A round is planned exactly
once: at once if its order may be picked when it is noted, else when the confirmation
comes — rounds then in the order they were received. The store loads an
:class:`OrderBook` with the orders locked; the handler notes a run's events in run order,
each seeing what the previous one changed; the store writes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from services.fulfillment.picking.domain.planning import Allocated, OrderState


@dataclass(frozen=True)
class Round:
    order_id: str
    round_id: str
    reservation_id: str
    allocations: list[Allocated]


@dataclass(frozen=True)
class StoredRound:
    """A round as noted, with the ids of the tasks planned from it (and their trips)."""

    round: Round
    received_at: datetime
    planned: bool
    tasks: tuple[tuple[str, str | None], ...] = ()  # (task id, trip id)


@dataclass(frozen=True)
class Confirmation:
    reservation_id: str
    backordered_skus: tuple[str, ...]


@dataclass(frozen=True)
class Confirmed:
    order: OrderState
    rounds: list[Round]  # to plan now, in the order they were received


@dataclass(frozen=True)
class Noted:
    order: OrderState
    new: bool  # False: the same round again (re-emitted with a new event id)


@dataclass
class OrderBook:
    """``now``: the transaction's time, which a round noted here is received at."""

    orders: dict[str, OrderState]
    rounds: dict[str, dict[str, StoredRound]]  # order id → round id →
    now: datetime
    confirmations: dict[str, Confirmation] = field(default_factory=dict)  # the last, per order
    changed_rounds: dict[tuple[str, str], StoredRound] = field(default_factory=dict)

    def confirm(self, order_id: str, confirmation: Confirmation) -> Confirmed:
        """The order confirmed; the rounds noted before may now be planned (none if it
        was cancelled)."""
        order = self.orders[order_id] = replace(self.orders[order_id], confirmed=True)
        self.confirmations[order_id] = confirmation
        if order.cancelled:
            return Confirmed(order, [])
        waiting = sorted(
            (r for r in self._rounds_of(order_id).values() if not r.planned),
            key=lambda r: (r.received_at, r.round.round_id),
        )
        for stored in waiting:
            self._keep(replace(stored, planned=True))
        return Confirmed(order, [r.round for r in waiting])

    def note_round(self, round_: Round) -> Noted:
        """Note a round, planned now if its order may be picked (the caller plans it)."""
        order = self.orders[round_.order_id]
        if round_.round_id in self._rounds_of(round_.order_id):
            return Noted(order, new=False)
        self._keep(StoredRound(round_, self.now, planned=order.may_pick))
        return Noted(order, new=True)

    def task_ids(self) -> set[str]:
        return {task_id for r in self._every_round() for task_id, _ in r.tasks}

    def trip_members(self) -> set[tuple[str, str]]:
        """(trip id, order id) of every task of these orders that is in a trip."""
        return {
            (trip_id, r.round.order_id)
            for r in self._every_round()
            for _, trip_id in r.tasks
            if trip_id is not None
        }

    def _rounds_of(self, order_id: str) -> dict[str, StoredRound]:
        return self.rounds.setdefault(order_id, {})

    def _every_round(self) -> list[StoredRound]:
        return [r for by_id in self.rounds.values() for r in by_id.values()]

    def _keep(self, stored: StoredRound) -> None:
        order_id, round_id = stored.round.order_id, stored.round.round_id
        self._rounds_of(order_id)[round_id] = stored
        self.changed_rounds[(order_id, round_id)] = stored
