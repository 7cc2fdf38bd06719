"""A key's lease across daemons (Redis mode): who may send the key's next signed call, and its nonce.

Why a lease and not just a shared counter: a counter gives unique nonces, not arrival order, and EXMO
rejects a nonce that arrives after a higher one (40009; calls/nonce.py). So, as the per-key turn does
inside one daemon, the lease is taken when the nonce is drawn and held until EXMO answers or the
upstream timeout abandons the call; its TTL outlives that timeout, so a daemon killed while holding it
holds up the key for at most the TTL. Only the holder's token releases it.

The nonce is the highest of: the shared counter plus one, the clock in ms, this daemon's own sequence
(its persisted ceiling after a restart: a Redis that lost writes in a failover cannot make a nonce go
back for this daemon), and the nonce EXMO named in its last 40009. A stale holder (its lease expired
while a call hung) meets EXMO's nonce check, which is the fencing token: at worst its call is refused
with 40009, never executed twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from proxy.calls.nonce import NonceSequence
from proxy.calls.nonce_store import key_id
from proxy.calls.ratelimit import RateLimited
from proxy.calls.shared_rate import SharedRateLimiter
from proxy.coord.client import CoordinationUnavailable, Coordinator, key_for

log = logging.getLogger(__name__)

MARGIN_S = 5.0  # the lease outlives the upstream timeout by this much


class Lease:
    """One signed call's hold on its key across daemons."""

    def __init__(self, coordinator: Coordinator, api_key: str, upstream_timeout_s: float) -> None:
        kid = key_id(api_key)
        self._coordinator = coordinator
        self._lease, self._counter = key_for(kid, "lease"), key_for(kid, "nonce")
        self._token = secrets.token_hex(12)
        self._ttl_ms = int((upstream_timeout_s + MARGIN_S) * 1000)
        self.held = False
        self.waited_s = 0.0

    async def take(self, sequence: NonceSequence, deadline: float, account: str, limiter: SharedRateLimiter,
                   ) -> tuple[int, float]:
        """Take the lease (waiting for another daemon's call on this key to end), a slot of the shared
        rate limit and the nonce, in one round trip, until `deadline`; (nonce, seconds to wait before
        sending). The nonce is made durable in this daemon's sequence before it is returned."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        backoff = 0.001
        while True:
            left = deadline - loop.time()
            state, value, wait_us = await self._coordinator.take(
                self._lease, self._counter, self._token, sequence.candidate(), self._ttl_ms,
                limiter.shared_interval_us, int(max(0.0, left) * 1_000_000))
            if state == 1:
                self.held = True
                self.waited_s = loop.time() - started
                await sequence.adopt(value)
                return value, wait_us / 1_000_000
            if state == 0:  # another daemon's call on this key is in flight
                if left <= 0:
                    raise RateLimited(max(0.1, value / 1000), f"account {account} is busy: another"
                                      " exmo-proxy holds its key's lease (EXMO takes one call per key at a"
                                      " time); retry")
                await asyncio.sleep(min(backoff, max(0.001, value / 1000), max(0.001, left)))
                backoff = min(backoff * 2, 0.02)
                continue
            wait = value / 1_000_000
            if state == -2:  # EXMO's pause, set by this or another daemon
                limiter.mirror_pause(wait)
                if wait > left:
                    raise RateLimited(wait, "EXMO asked to pause sending (rate limit); retry after"
                                            f" {wait:.0f}s")
                await limiter.sleep(wait)
                continue
            raise RateLimited(wait)

    async def release(self) -> None:
        """Let the next call on this key go, here or on another daemon; if Redis cannot be told, the
        lease expires on its own within its TTL."""
        if not self.held:
            return
        self.held = False
        try:
            await self._coordinator.release(self._lease, self._token)
        except CoordinationUnavailable:
            log.warning("could not release a key's lease in Redis; it expires within %.0f s",
                        self._ttl_ms / 1000)
