"""The outbound rate limit shared by every daemon on one Redis (SPEC §10).

EXMO's 10 requests/second are per IP or user, so daemons behind one egress address share them. The
schedule is GCRA with no burst, as in ratelimit.py, but kept in Redis and timed by Redis' own clock
(scripts.RATE), so every daemon draws its slots from one line. EXMO's pause (40034, "Retry after N
sec.") seen by one daemon is written there too and pauses them all. Patience, 429 and Retry-After are
as for the local limiter.

While Redis does not answer, signed calls are refused (503, coordination_unavailable, unsent) by the
lease anyway; public reads go on under a local limiter at FALLBACK_SHARE of the rate, a conservative
share for one of several daemons that can no longer see each other.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from proxy.calls.ratelimit import JITTER_MARGIN, RateLimited, RateLimiter
from proxy.coord.keys import CoordinationUnavailable

if TYPE_CHECKING:
    from proxy.coord.client import Coordinator

log = logging.getLogger(__name__)

FALLBACK_SHARE = 0.25


class SharedRateLimiter(RateLimiter):
    """RateLimiter's interface; the inherited local schedule is the fallback for public reads."""

    def __init__(self, coordinator: Coordinator, rate_per_second: float) -> None:
        self.coordinator = coordinator
        self._pausing: set[asyncio.Task[None]] = set()
        super().__init__(rate_per_second)

    def set_rate(self, rate_per_second: float) -> None:
        self.shared_interval_us = int((1.0 + JITTER_MARGIN) / rate_per_second * 1_000_000)
        super().set_rate(rate_per_second * FALLBACK_SHARE)

    def pause(self, seconds: float) -> None:
        super().pause(seconds)  # this daemon stops at once; the others within one Redis round trip
        task = asyncio.ensure_future(self._share_pause(seconds))
        self._pausing.add(task)
        task.add_done_callback(self._pausing.discard)

    async def _share_pause(self, seconds: float) -> None:
        try:
            await self.coordinator.pause(seconds)
        except CoordinationUnavailable:
            log.warning("EXMO's pause of %.0f s could not be shared through Redis", seconds)

    def mirror_pause(self, seconds: float) -> None:
        """A pause another daemon wrote to Redis: this daemon's own schedule keeps it too."""
        super().pause(seconds)

    async def sleep(self, seconds: float) -> None:
        """Wait before sending, ended early by `stop` (shutdown)."""
        await self._sleep(seconds)

    async def acquire(self, max_wait_s: float, public: bool = False) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        while True:
            if self._stopped is not None:
                raise self._stopped()
            if public and self.coordinator.problem is not None:
                await super().acquire(max(0.0, deadline - loop.time()))
                return
            left_us = int(max(0.0, deadline - loop.time()) * 1_000_000)
            try:
                state, wait_us = await self.coordinator.rate(self.shared_interval_us, left_us)
            except CoordinationUnavailable:
                if not public:
                    raise
                continue  # the problem is marked now: the local share takes over
            wait = wait_us / 1_000_000
            if state == 1:
                if wait > 0:
                    await self._sleep(wait)
                return
            if state == -2:  # EXMO's pause, set by this or another daemon
                self.mirror_pause(wait)
                if wait > max(0.0, deadline - loop.time()):
                    raise RateLimited(wait, "EXMO asked to pause sending (rate limit); retry after"
                                            f" {wait:.0f}s")
                await self._sleep(wait)
                continue
            raise RateLimited(wait)
