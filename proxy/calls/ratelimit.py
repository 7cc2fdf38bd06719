"""The outbound rate limit: EXMO allows 10 requests/second per IP or user (exmo-api.md §5).

A single scheduler spaces calls evenly (GCRA with no burst), 10% wider than 1/rate: EXMO counts
*arrivals*, and network jitter can bring two calls closer than they were sent — at exactly 100 ms
spacing the simulator saw 11 calls inside 0.995 s and answered 40034. A caller whose turn is further
away than it is willing to wait is refused at once with the time to retry, instead of queueing
without bound.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping

from proxy.exmo.refusals import Refusal


class RateLimited(Refusal):
    """The wait for a sending slot (or for the account's turn) would exceed the caller's patience."""

    status, slug = 429, "rate_limited"

    def __init__(self, retry_after_s: float, message: str = "") -> None:
        super().__init__(message or f"rate limit queue full; retry after {retry_after_s:.1f}s")
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))

    @property
    def headers(self) -> Mapping[str, str]:
        return {"Retry-After": self.retry_after_header}


JITTER_MARGIN = 0.10


class RateLimiter:
    def __init__(self, rate_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.set_rate(rate_per_second)
        self._clock = clock
        self._next_free = 0.0  # the theoretical time the next call may go out
        self.paused_until = 0.0
        self._pauses = 0
        self._sleepers: set[asyncio.Future[None]] = set()
        self._stopped: Callable[[], BaseException] | None = None

    def set_rate(self, rate_per_second: float) -> None:
        self.interval = (1.0 + JITTER_MARGIN) / rate_per_second

    def reserve(self, max_wait_s: float) -> float:
        """Claim the next slot; returns how long to sleep before sending."""
        now = self._clock()
        slot = max(now, self._next_free)
        wait = slot - now
        if wait > max_wait_s + 1e-9:  # float rounding must not refuse an exact fit
            paused = self.paused_for()
            raise RateLimited(wait, f"EXMO asked to pause sending (rate limit); retry after {paused:.0f}s"
                              if paused else "")
        self._next_free = slot + self.interval
        return wait

    def pause(self, seconds: float) -> None:
        """EXMO said to stop (40034 / "Retry after N sec."): no slot before now + seconds."""
        self._next_free = max(self._next_free, self._clock() + seconds)
        self.paused_until = max(self.paused_until, self._clock() + seconds)
        self._pauses += 1  # slots handed out before now are void: their holders queue again

    def stop(self, error: Callable[[], BaseException]) -> None:
        """No more slots: every wait for one ends now with `error()`, and so does every later call
        (the daemon stops sending: see Dispatcher.begin_drain)."""
        self._stopped = error
        for sleeper in self._sleepers:
            if not sleeper.done():
                sleeper.set_exception(error())

    async def _sleep(self, seconds: float) -> None:
        """asyncio.sleep that stop() can end early."""
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)

    def paused_for(self) -> float:
        """Seconds left of a pause EXMO asked for (0 when none)."""
        return max(0.0, self.paused_until - self._clock())

    async def acquire(self, max_wait_s: float, public: bool = False) -> None:
        """Wait for a sending slot (`public`: a read; the shared limiter treats those differently)."""
        deadline = self._clock() + max_wait_s
        while True:
            if self._stopped is not None:
                raise self._stopped()
            pauses = self._pauses
            wait = self.reserve(max(0.0, deadline - self._clock()))
            if wait > 0:
                await self._sleep(wait)
            if self._pauses == pauses:
                return
            # EXMO asked for a pause while this call slept: sending now would run into the ban


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
