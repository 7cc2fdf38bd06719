"""Sending one call upstream: rate slot, per-key ordering, nonce, signature, 40009 resync.

A private call holds its key's lock (see nonce.py for why) from drawing the nonce until EXMO answers
or the upstream timeout abandons it. Waiting for the lock and for a rate slot is bounded by the
client's patience (`max_wait_s`); past it the client gets 429 with Retry-After instead of a hang.
Just before a nonce is drawn the call is dropped, unsent, if its client has hung up (a bot that
timed out may already be retrying: sending the first copy too would place the order twice) or if
the daemon is shutting down and its answer would no longer fit in the grace period (begin_drain).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from proxy.calls.lease import Lease
from proxy.calls.nonce import NonceBook, NonceSequence
from proxy.calls.ratelimit import RateLimited, RateLimiter
from proxy.calls.shared_rate import SharedRateLimiter
from proxy.calls.shared_reads import SharedReads
from proxy.calls.turns import Turn
from proxy.config.accounts import Account
from proxy.config.sections import Limits
from proxy.exmo.answers import nonce_rejection, rate_limit_pause
from proxy.exmo.methods import method_class
from proxy.exmo.refusals import Refusal
from proxy.exmo.signing import Params, Signer, encode_body
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream, UpstreamError, UpstreamResponse, require_api_answer
from proxy.vault.secret import Secret

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
PUBLIC_BACKOFF_S = (0.2, 0.6)  # three tries: wait 0.2 s, then 0.6 s


class NotSent(Refusal):
    """The call was dropped before a nonce was drawn: nothing reached EXMO, so it is safe to retry."""

    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message, status=status, slug=slug)


def _shutting_down() -> NotSent:
    return NotSent(503, "shutting_down", "the daemon is shutting down and this request could not be sent"
                                         " within its grace period; it was not sent, so it is safe to retry")


Waiting = Callable[[], bool]
Signed = Callable[[int], None]


def _ignore(nonce: int) -> None:
    return None


def _always() -> bool:
    return True


async def _take_turn(lock: Turn, max_wait_s: float, account: str) -> None:
    # A free turn is taken without suspending, so even max_wait_s = 0 gets it; a turn that was just
    # handed to a waiter that has not run yet is not free, and then the bound applies.
    try:
        await lock.acquire(max_wait_s)
    except TimeoutError:
        raise RateLimited(max_wait_s, f"account {account} is busy: its calls go to EXMO one at a time and"
                                      f" the queue did not move within {max_wait_s:g}s") from None


class Dispatcher:
    """Everything a call needs on its way out; one per running app."""

    def __init__(self, upstream: Upstream, limiter: RateLimiter, nonces: NonceBook,
                 shared: SharedReads | None = None, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        # Redis mode (a shared limiter): a key's lease, rate slot and nonce come from Redis (calls/lease.py)
        self._redis = limiter if isinstance(limiter, SharedRateLimiter) else None
        self.upstream = upstream
        self.limiter = limiter
        self.nonces = nonces
        self.shared = shared or SharedReads({})
        self._account_limiters: dict[str, RateLimiter] = {}
        self._signers: dict[str, tuple[Secret, Signer]] = {}
        self._leases: dict[str, Lease] = {}
        self.draining = False  # SIGTERM came: see begin_drain
        self._send_by = math.inf  # while draining, nothing is sent after this (monotonic) time
        self.default_wait_s = Limits.max_wait_s  # the config's, given by reconfigure()

    def reconfigure(self, limits: Limits, cache: Mapping[str, float]) -> None:
        """A reload's limits (rate, patience) and cache; calls already queued keep their patience."""
        self.limiter.set_rate(limits.rate_per_second)
        self.default_wait_s = limits.max_wait_s
        self.shared.reconfigure(cache)

    def begin_drain(self, grace_s: float, upstream_timeout_s: float) -> None:
        """SIGTERM: calls already inside the daemon are still sent while their answer fits in the
        grace (sent before `grace_s - upstream_timeout_s` has passed, their answer or timeout comes
        within `grace_s`), so shutting down never makes an outcome unknown. At that cutoff every call
        still waiting for its turn or a rate slot is answered 503 and not sent."""
        self.draining = True
        window = max(0.0, grace_s - upstream_timeout_s)
        self._send_by = time.monotonic() + window
        asyncio.get_running_loop().call_later(window, self._stop_sending)

    def _stop_sending(self) -> None:
        for sequence in self.nonces.sequences():
            sequence.lock.stop(_shutting_down)
        for limiter in (self.limiter, *self._account_limiters.values()):
            limiter.stop(_shutting_down)

    def _past_cutoff(self) -> bool:
        return self.draining and time.monotonic() >= self._send_by

    def _account_limiter(self, account: Account) -> RateLimiter | None:
        rate = account.policy.rate_per_second
        if rate is None:
            return None
        limiter = self._account_limiters.get(account.name)
        if limiter is None:
            limiter = self._account_limiters[account.name] = RateLimiter(rate)
            if self._past_cutoff():
                limiter.stop(_shutting_down)
        limiter.set_rate(rate)  # a reload may have changed it
        return limiter

    def _signer(self, account: Account) -> Signer:
        kept = self._signers.get(account.key)
        if kept is None or kept[0] is not account.secret:  # a reload may bring a new secret
            kept = self._signers[account.key] = (account.secret, Signer(account.secret.encode()))
        return kept[1]

    def _go_ahead(self, client_waiting: Waiting) -> None:
        if self._past_cutoff():
            raise _shutting_down()
        if not client_waiting():
            raise NotSent(499, "client_gone", "the client disconnected before the request was sent; not sent")

    async def public(
        self, http_method: str, path: str, params: Params, max_wait_s: float, cached_ok: bool = True
    ) -> UpstreamResponse:
        """A public read: shared with identical ones in flight (shared_reads.py), retried on failure;
        `cached_ok=False`: never an answer kept by `cache:`."""
        if self._past_cutoff():
            raise _shutting_down()
        encoded = urlencode(params)
        method = path.split("/", 2)[2]
        # shared by everyone who joins: the configured patience, not the first caller's header
        deadline = time.monotonic() + max(max_wait_s, self.default_wait_s)

        async def fetch() -> UpstreamResponse:
            return await self._public_with_retries(http_method, path, encoded, deadline)

        return await self.shared.get(method, (http_method, path, encoded), fetch, cached_ok)

    async def _public_with_retries(
        self, http_method: str, path: str, encoded: str, deadline: float
    ) -> UpstreamResponse:
        # Reads change nothing, so unlike signed calls they may be sent again (SPEC §7). Every
        # failure, a non-JSON or 5xx answer included, arrives here as UpstreamError (upstream/client.py).
        for backoff in PUBLIC_BACKOFF_S:
            try:
                return await self._public_attempt(http_method, path, encoded, deadline)
            except UpstreamError:
                log.info("public %s failed upstream; retrying in %.1fs", path, backoff)
                await asyncio.sleep(backoff)
        return await self._public_attempt(http_method, path, encoded, deadline)

    async def _public_attempt(
        self, http_method: str, path: str, encoded: str, deadline: float
    ) -> UpstreamResponse:
        await self.limiter.acquire(max(0.0, deadline - time.monotonic()), public=True)
        self._go_ahead(_always)  # shared by every waiter: only shutdown stops it, not one hang-up
        return await self._public_once(http_method, path, encoded)

    async def _public_once(self, http_method: str, path: str, encoded: str) -> UpstreamResponse:
        body = encoded.encode() if http_method != "GET" and encoded else None
        return await self._send("public", http_method, path, body=body,
                                query=encoded if http_method == "GET" else "",
                                headers={"Content-Type": FORM} if body is not None else {})

    async def _send(self, kind: str, http_method: str, path: str, *, body: bytes | None, query: str,
                    headers: dict[str, str]) -> UpstreamResponse:
        """One upstream exchange, timed by method class; EXMO's rate-limit answers pause all sending
        for as long as EXMO asks (SPEC §7). A public answer is checked here (anything but EXMO's JSON is
        an UpstreamError, and is retried); a signed one once its key's turn is over (`private`)."""
        private = kind != "public"
        started = time.monotonic()
        try:
            answer = await self.upstream.send(http_method, path, body=body, query=query, headers=headers,
                                              private=private)
        finally:
            self.metrics.upstream_time(kind, time.monotonic() - started)
        pause = rate_limit_pause(answer)
        if pause is not None:
            self.limiter.pause(pause)
            log.warning("EXMO answered with a rate-limit error: sending paused for %.0f s", pause)
        return answer if private else require_api_answer(answer, self.upstream.base_url, private=False)

    async def private(
        self, account: Account, path: str, params: Params, max_wait_s: float, client_waiting: Waiting,
        on_signed: Signed = _ignore,
    ) -> UpstreamResponse:
        """Sign and send; `on_signed(nonce)` is told each nonce used (for the audit log)."""
        if self._past_cutoff():
            raise _shutting_down()
        sequence = self.nonces.sequence(account.key)
        deadline = time.monotonic() + max_wait_s
        self.metrics.queued += 1
        try:
            await _take_turn(sequence.lock, max_wait_s, account.name)
        finally:
            self.metrics.queued -= 1
        lease = None
        if self._redis is not None:
            lease = self._leases.get(account.key)
            if lease is None:
                lease = self._leases[account.key] = Lease(self._redis.coordinator, account.key)
        try:
            response = await self._signed(account, sequence, path, params, deadline, client_waiting,
                                          on_signed, deadline - max_wait_s, lease)
            used = nonce_rejection(response)
            if used is not None:
                # Something else used this key (or EXMO lost our order): 40009 is a definite rejection,
                # so one retry with a nonce above the one EXMO names cannot execute twice (SPEC §7).
                sequence.observe(used)
                self.metrics.nonce_resync()
                log.warning("account %s: EXMO rejected the nonce (40009); retrying once above %d",
                            account.name, sequence.last)
                response = await self._signed(account, sequence, path, params, deadline, client_waiting,
                                              on_signed, time.monotonic(), lease)
        finally:
            if lease is not None:
                lease.release()
            sequence.lock.release()
        # Parsed after the turn is over: the next call on this key need not wait for it.
        return require_api_answer(response, self.upstream.base_url, private=True)

    async def _signed(
        self, account: Account, sequence: NonceSequence, path: str, params: Params, deadline: float,
        client_waiting: Waiting, on_signed: Signed, queued_at: float, lease: Lease | None = None,
    ) -> UpstreamResponse:
        own = self._account_limiter(account)
        if own is not None:
            await own.acquire(max(0.0, deadline - time.monotonic()))
        if lease is not None and self._redis is not None:
            # Redis mode: the key's lease, a shared rate slot and the nonce in one round trip.
            nonce, wait = await lease.take(sequence, deadline, account.name, self._redis,
                                           self.upstream.timeout_s)
            self.metrics.lease_wait(lease.waited_s)
            if wait > 0:
                await self._redis.sleep(wait)
            self._go_ahead(client_waiting)  # a nonce drawn and left unused is only a gap
        else:
            await self.limiter.acquire(max(0.0, deadline - time.monotonic()))
            self._go_ahead(client_waiting)
            nonce = await sequence.next()
        kind = method_class(path.split("/", 2)[2])
        self.metrics.queue_time(kind, time.monotonic() - queued_at)
        on_signed(nonce)
        body = encode_body(params, nonce)
        headers = {"Content-Type": FORM, "Key": account.key, "Sign": self._signer(account).sign(body)}
        return await self._send(kind, "POST", path, body=body, query="", headers=headers)
