"""Keeps a service's long-running parts going: one that fails or ends on its own is started
again with back-off, loudly, and readiness reports it down meanwhile.

The consumer, relay, dependency watch and background jobs all ride out a lost database or
broker by themselves where they can; whatever escapes them (a connection that died in a
way nobody foresaw, a client that gave up) ends up here instead of ending the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
)

from shared.runtime.db import UNREACHABLE
from shared.runtime.logging import get_logger
from shared.runtime.metrics import PART_RESTARTS

log = get_logger(__name__)

# a part that ran this long before failing was healthy: its back-off starts over
HEALTHY_AFTER_S = 60.0


class PartEnded(Exception):
    """A part returned although the service was not stopping."""


class _RanLong(Exception):
    """Carries the failure of a part that had been healthy for a while."""


class Parts:
    def __init__(
        self, stopping: asyncio.Event, *, initial_s: float = 0.5, max_s: float = 10.0
    ) -> None:
        self.stopping = stopping
        self.initial_s = initial_s
        self.max_s = max_s
        self._up: dict[str, bool] = {}

    def health(self) -> dict[str, bool]:
        return {f"part:{name}": up for name, up in self._up.items()}

    async def keep_running(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        """Run ``start()`` until the service stops, starting it again each time it fails."""
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(Exception)
                    & retry_if_not_exception_type(_RanLong),
                    wait=wait_exponential(multiplier=self.initial_s, max=self.max_s),
                    stop=lambda _: self.stopping.is_set(),
                    before_sleep=lambda state: self._restarting(name, state),
                    reraise=True,
                ):
                    with attempt:
                        began = loop.time()
                        try:
                            await self._run_once(name, start)
                        except Exception as exc:
                            if loop.time() - began >= HEALTHY_AFTER_S:
                                raise _RanLong from exc
                            raise
                return
            except _RanLong as ran_long:
                self._restarting(name, None, ran_long.__cause__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.initial_s)
            except Exception:
                if not self.stopping.is_set():
                    raise
                return

    async def _run_once(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        self._up[name] = True
        try:
            await start()
        finally:
            self._up[name] = False
        if not self.stopping.is_set():
            raise PartEnded(f"{name} returned while the service was running")

    def _restarting(
        self, name: str, state: RetryCallState | None, error: BaseException | None = None
    ) -> None:
        if state is not None and state.outcome is not None:
            error = state.outcome.exception()
        PART_RESTARTS.labels(name).inc()
        # a database or broker away is an outage the part waits out; anything else a bug
        outage = isinstance(error, UNREACHABLE)
        (log.warning if outage else log.error)(
            "service.part_waiting" if outage else "service.part_failed",
            part=name,
            error=repr(error),
            attempt=state.attempt_number if state else 1,
            next_in_s=round(state.upcoming_sleep, 2) if state else 0,
        )
