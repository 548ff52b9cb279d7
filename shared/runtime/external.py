"""Calls to an outside system (a payment gateway, a carrier), the way handlers make them:
bounded retries with exponential backoff when the call got no answer, and every attempt
timed, counted and recorded, in the handler's transaction, by the caller's ``record``.

The adapters keep what differs: which error means "no answer", how an answer is stored
and counted, and what giving up means (a ``*_failed`` event, or a record for the DLQ).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Counter, Histogram
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared.runtime.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for calls that got no answer."""

    attempts: int = 3
    initial_s: float = 0.1
    max_s: float = 1.0


class Recorder(Protocol[T_contra]):
    """Stores one attempt: its number, the answer or the error, how long it took."""

    async def __call__(
        self, *, attempt: int, answer: T_contra | None, error: str | None, duration_ms: float
    ) -> None: ...


@dataclass(frozen=True)
class Meters:
    """A system's call counter (by operation and outcome) and duration histogram."""

    calls: Counter
    seconds: Histogram


class NoAnswer(Exception):
    """Every attempt ended in the adapter's no-answer error."""

    def __init__(self, operation: str, attempts: int, error: str) -> None:
        super().__init__(f"{operation}: no answer after {attempts} attempts: {error}")
        self.operation = operation
        self.attempts = attempts
        self.error = error


@dataclass(frozen=True)
class Answered(Generic[T]):
    answer: T
    attempts: int


async def call_recorded(
    call: Callable[[], Awaitable[T]],
    *,
    operation: str,
    no_answer: type[Exception],
    policy: RetryPolicy,
    record: Recorder[Any],  # Any: T is the call's answer type, not widened by record's
    meters: Meters,
    outcome: Callable[[T], str] = lambda _: "answered",
    log_event: str,
) -> Answered[T]:
    """Call until it answers or ``policy.attempts`` are spent (then :class:`NoAnswer`).

    Only ``no_answer`` is retried: any other error is the caller's to handle.
    """
    error = ""
    number = 0
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(no_answer),
            stop=stop_after_attempt(max(policy.attempts, 1)),
            wait=wait_exponential(multiplier=policy.initial_s, max=policy.max_s),
            reraise=True,
        ):
            with attempt:
                number = attempt.retry_state.attempt_number
                started = time.perf_counter()
                try:
                    answer = await call()
                except no_answer as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    ms = _observe(meters, operation, "error", started)
                    await record(attempt=number, answer=None, error=error, duration_ms=ms)
                    log.warning(log_event, operation=operation, attempt=number, error=error)
                    raise
                ms = _observe(meters, operation, outcome(answer), started)
                await record(attempt=number, answer=answer, error=None, duration_ms=ms)
                return Answered(answer, number)
    except no_answer as exc:
        raise NoAnswer(operation, number, error) from exc
    raise AssertionError("unreachable")


def _observe(meters: Meters, operation: str, outcome: str, started: float) -> float:
    """Count the attempt; its duration in milliseconds."""
    elapsed = time.perf_counter() - started
    meters.calls.labels(operation, outcome).inc()
    meters.seconds.labels(operation).observe(elapsed)
    return elapsed * 1000
