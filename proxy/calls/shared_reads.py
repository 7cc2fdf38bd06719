"""Public reads shared between bots: one upstream call for identical requests, optional TTL.

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

from proxy.upstream.client import UpstreamResponse

MAX_ENTRIES = 1024
MAX_BYTES = 32 * 1024 * 1024  # clients choose the keys (any query string): bound the memory
MAX_ENTRY_BYTES = 2 * 1024 * 1024
Key = tuple[str, str, str]
Fetch = Callable[[], Awaitable[UpstreamResponse]]


class SharedReads:
    def __init__(self, ttl: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = dict(ttl)
        self._clock = clock
        self._cache: dict[Key, tuple[float, UpstreamResponse]] = {}
        self._inflight: dict[Key, asyncio.Future[UpstreamResponse]] = {}

    async def get(self, method: str, key: Key, fetch: Fetch, cached_ok: bool = True) -> UpstreamResponse:
        """The answer: kept (`cache:`), joined in flight, or fetched. `cached_ok=False`: not a kept one
        (paper mode fills against the market as it is now); an identical read in flight is fresh."""
        cached = self._cache.get(key) if cached_ok else None
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(fetch())
            self._inflight[key] = flight
            flight.add_done_callback(lambda done: self._landed(method, key, done))
        # shield: one waiting client that hangs up must not cancel the call the others wait for
        return await asyncio.shield(flight)

    def clear(self) -> None:
        self._cache.clear()

    def reconfigure(self, ttl: Mapping[str, float]) -> None:
        """A reload's `cache:` section; answers kept under the old one are dropped."""
        self.ttl = dict(ttl)
        self.clear()

    def _landed(self, method: str, key: Key, done: asyncio.Future[UpstreamResponse]) -> None:
        self._inflight.pop(key, None)
        ttl = self.ttl.get(method, 0.0)
        if ttl <= 0 or done.cancelled() or done.exception() is not None:
            return
        answer = done.result()
        if answer.status != 200 or len(answer.body) > MAX_ENTRY_BYTES or _is_error(answer.body):
            return
        now = self._clock()
        self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        while self._cache and (len(self._cache) >= MAX_ENTRIES
                               or self._bytes() + len(answer.body) > MAX_BYTES):
            self._cache.pop(next(iter(self._cache)))  # oldest first
        self._cache[key] = (now + ttl, answer)

    def _bytes(self) -> int:
        return sum(len(v[1].body) for v in self._cache.values())


def _is_error(body: bytes) -> bool:
    """EXMO answers errors with HTTP 200 (exmo-api.md §4.1): never keep one around."""
    head = body[:4096].replace(b" ", b"")
    return b'"result":false' in head or b'"error":{' in head or b'"s":"error"' in head
