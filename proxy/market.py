"""Public market data shared between bots: one upstream call for identical requests, optional TTL.

Ten bots asking for the same `ticker` at the same moment cost one of EXMO's 10 requests/second, not
ten: the first request goes out and the others wait for its answer (single flight). With
`cache: {ticker: 1, order_book: 0.5}` an answer is also reused for that many seconds (default off:
a stale price is the bot author's choice, not ours). Only 200 answers are cached; the cache is
bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from proxy.upstream import UpstreamResponse

MAX_ENTRIES = 1024
Key = tuple[str, str, str]
Fetch = Callable[[], Awaitable[UpstreamResponse]]


class SharedReads:
    def __init__(self, ttl: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = dict(ttl)
        self._clock = clock
        self._cache: dict[Key, tuple[float, UpstreamResponse]] = {}
        self._inflight: dict[Key, asyncio.Future[UpstreamResponse]] = {}

    async def get(self, method: str, key: Key, fetch: Fetch) -> UpstreamResponse:
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(fetch())
            self._inflight[key] = flight
            flight.add_done_callback(lambda done: self._landed(method, key, done))
        # shield: one waiting client that hangs up must not cancel the call the others wait for
        return await asyncio.shield(flight)

    def _landed(self, method: str, key: Key, done: asyncio.Future[UpstreamResponse]) -> None:
        self._inflight.pop(key, None)
        ttl = self.ttl.get(method, 0.0)
        if ttl <= 0 or done.cancelled() or done.exception() is not None or done.result().status != 200:
            return
        if len(self._cache) >= MAX_ENTRIES:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= MAX_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (self._clock() + ttl, done.result())
