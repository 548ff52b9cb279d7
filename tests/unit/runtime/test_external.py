"""The recorded, retried call to an outside system: pure logic, the outside system is a
scripted function and the recorder a list."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.runtime.external import Meters, NoAnswer, RetryPolicy, call_recorded

FAST = RetryPolicy(attempts=3, initial_s=0, max_s=0)


class Timeout(Exception):
    """The outside system's "no answer"."""


def meters() -> Meters:
    registry = CollectorRegistry()
    return Meters(
        Counter("calls", "", ["operation", "outcome"], registry=registry),
        Histogram("seconds", "", ["operation"], registry=registry),
    )


class Script:
    """Answers or raises, one step per attempt."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.calls = 0

    async def __call__(self) -> Any:
        step = self.steps[self.calls]
        self.calls += 1
        if isinstance(step, Exception):
            raise step
        return step


class Attempts(list[dict[str, Any]]):
    async def __call__(self, **attempt: Any) -> None:
        self.append(attempt)


def count(m: Meters, outcome: str) -> float:
    return m.calls.labels("rates", outcome)._value.get()


async def call(script: Script, record: Attempts, m: Meters, **extra: Any) -> Any:
    return await call_recorded(
        script,
        operation="rates",
        no_answer=Timeout,
        policy=FAST,
        record=record,
        meters=m,
        log_event="test.no_answer",
        **extra,
    )


async def test_an_answer_after_timeouts_records_every_attempt() -> None:
    script, record, m = Script(Timeout("slow"), "42"), Attempts(), meters()
    answered = await call(script, record, m, outcome=lambda a: f"answer-{a}")
    assert (answered.answer, answered.attempts) == ("42", 2)
    assert [(a["attempt"], a["answer"], a["error"]) for a in record] == [
        (1, None, "Timeout: slow"),
        (2, "42", None),
    ]
    assert all(a["duration_ms"] >= 0 for a in record)
    assert (count(m, "error"), count(m, "answer-42")) == (1, 1)


async def test_no_answer_after_the_policy_attempts() -> None:
    script, record, m = Script(*(Timeout(f"t{n}") for n in range(5))), Attempts(), meters()
    with pytest.raises(NoAnswer) as gave_up:
        await call(script, record, m)
    assert (gave_up.value.attempts, gave_up.value.error) == (3, "Timeout: t2")
    assert script.calls == 3 and len(record) == 3
    assert count(m, "error") == 3


async def test_other_errors_are_not_retried_nor_recorded() -> None:
    script, record, m = Script(ValueError("bug"), "never"), Attempts(), meters()
    with pytest.raises(ValueError):
        await call(script, record, m)
    assert script.calls == 1 and record == []
