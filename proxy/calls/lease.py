"""A key's lease across daemons (Redis mode): who may send the key's next signed call, and its nonce.

Why a lease and not just a shared counter: a counter gives unique nonces, not arrival order, and EXMO
rejects a nonce that arrives after a higher one (40009; calls/nonce.py). So, as the per-key turn does
inside one daemon, the lease is taken when the nonce is drawn and held until EXMO answers or the
upstream timeout abandons the call; its TTL outlives that timeout, so a daemon killed while holding it
holds up the key for at most the TTL. Only the call that took it releases it (each call's lease value
is this daemon's token and a number of its own).

One round trip per call: the lease, a slot of the shared rate limit and the nonce come from one
script (coord/scripts.TAKE). The release is not on the call's way: it lingers LINGER_S, and this
daemon's next call on the key, if it comes by then, takes the lease over in its own TAKE instead (a
busy key then costs one script per call). A daemon kept waiting for a key asks for the next turn, and
the holder leaves the key to it rather than taking it again: daemons under load take turns.

The nonce is the highest of: the shared counter plus one, the clock in ms, this daemon's own sequence
(its persisted ceiling after a restart: a Redis that lost writes in a failover cannot make a nonce go
back for this daemon), and the nonce EXMO named in its last 40009. A stale holder (its lease expired
while a call hung) meets EXMO's nonce check, which is the fencing token: at worst its call is refused
with 40009, never executed twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING, Any

from proxy.calls.nonce import NonceSequence
from proxy.calls.nonce_store import key_id
from proxy.calls.ratelimit import RateLimited
from proxy.calls.shared_rate import SharedRateLimiter
from proxy.coord.keys import key_for

if TYPE_CHECKING:
    from proxy.coord.client import Coordinator

log = logging.getLogger(__name__)

MARGIN_S = 5.0  # the lease outlives the upstream timeout by this much
WANT_MS = 50  # a daemon's claim to a key's next turn lasts this long after it last asked
POLL_S = (0.001, 0.008)  # a busy key is asked again after 1 ms, doubling up to 8 ms
LINGER_S = 0.002  # how long a lease's release waits for this daemon's next call on the key


class Lease:
    """One API key's lease, as this daemon takes it: for one call at a time (the key's turn is held
    around `take` … `release`), each call with a value of its own."""

    def __init__(self, coordinator: Coordinator, api_key: str) -> None:
        kid = key_id(api_key)
        self._coordinator = coordinator
        self._keys = [key_for(kid, "lease"), key_for(kid, "nonce"), key_for(kid, "want")]
        self._calls = itertools.count(1)
        self._held: str | None = None  # the value of the lease this daemon's current call holds
        self.waited_s = 0.0  # the last take's wait for the lease (metrics)

    async def take(self, sequence: NonceSequence, deadline: float, account: str, limiter: SharedRateLimiter,
                   upstream_timeout_s: float) -> tuple[int, float]:
        """Take the lease (waiting for another daemon's call on this key to end), a slot of the shared
        rate limit and the nonce, in one round trip, until `deadline`; (nonce, seconds to wait before
        sending). The nonce is made durable in this daemon's sequence before it is returned."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        poll = POLL_S[0]
        ttl_ms = int((upstream_timeout_s + MARGIN_S) * 1000)
        while True:
            left = deadline - loop.time()
            value = f"{self._coordinator.owner}{next(self._calls)}"
            state, found, wait_us = await self._coordinator.take(
                self._keys, value, sequence.candidate(), ttl_ms, limiter.shared_interval_us,
                int(max(0.0, left) * 1_000_000), WANT_MS, orphan=self._orphan(value))
            if state == 1:
                self._held = value
                self.waited_s = loop.time() - started
                await sequence.adopt(found)
                return found, wait_us / 1_000_000
            if state == 0:  # another daemon's call on this key is in flight, or it is next
                if left <= 0:
                    raise RateLimited(max(0.1, found / 1000), f"account {account} is busy: another"
                                      " exmo-proxy holds its key's lease (EXMO takes one call per key at a"
                                      " time); retry")
                await asyncio.sleep(min(poll, max(0.001, found / 1000), max(0.001, left)))
                poll = min(poll * 2, POLL_S[1])
                continue
            wait = found / 1_000_000
            if state == -2:  # EXMO's pause, set by this or another daemon
                limiter.mirror_pause(wait)
                if wait > left:
                    raise RateLimited(wait, "EXMO asked to pause sending (rate limit); retry after"
                                            f" {wait:.0f}s")
                await limiter.sleep(wait)
                continue
            raise RateLimited(wait)

    def release(self) -> None:
        """Let the next call on this key go, here or on another daemon. Not awaited: the call's answer
        does not wait for it; and it lingers LINGER_S, since this daemon's next call on the key, if it
        comes by then, does its work in its own round trip. If Redis cannot be told, the lease expires
        on its own within its TTL."""
        value, self._held = self._held, None
        if value is not None:
            self._coordinator.release(self._keys[0], value, LINGER_S)

    def _orphan(self, value: str) -> Any:
        def give_back(found: Any) -> None:  # the call gave up waiting, and its take went through
            if int(found[0]) == 1:
                self._coordinator.release(self._keys[0], value)
        return give_back
