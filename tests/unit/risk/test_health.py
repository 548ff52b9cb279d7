"""The risk worker's readiness while faust is still starting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from faust.exceptions import ConsumerNotStarted

from services.risk.app import Health


class _NotStartedConsumer:
    def assignment(self) -> set[Any]:
        raise ConsumerNotStarted("the consumer has not started")


def test_readiness_before_the_consumer_started_is_not_ready_rather_than_an_error() -> None:
    health = Health()
    health.app = cast(Any, SimpleNamespace(consumer=_NotStartedConsumer(), rebalancing=False))
    assert health.checks()["partitions_assigned"] is False


def test_readiness_with_partitions_assigned() -> None:
    health = Health()
    consumer = SimpleNamespace(assignment=lambda: {("order.events", 0)})
    health.app = cast(Any, SimpleNamespace(consumer=consumer, rebalancing=False))
    health.rebuilt = health.started = True
    assert all(health.checks().values())
