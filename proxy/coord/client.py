"""The daemon's Redis: one client (one connection pool), a timeout on every call, and whether it answers.

redis-py's asyncio client (redis.asyncio), standalone or through Sentinel, which follows a failover to
the new primary. Every call is bounded by `redis.timeout_s` as a whole (connecting included); a
failure marks Redis as the daemon's problem (`/readyz` 503 naming it) and raises
CoordinationUnavailable, which refuses a signed call unsent (503). A check every second (PING,
and the shared halt switch) clears the problem as soon as Redis answers again: no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from proxy.config.coordination import RedisSettings, read_password
from proxy.coord import scripts
from proxy.coord.batch import Batch, Orphan
from proxy.coord.keys import (
    ALIVE_KEY,
    HALT_KEY,
    PAUSE_KEY,
    RATE_KEY,
    CoordinationUnavailable,
)

log = logging.getLogger(__name__)

HEALTH_EVERY_S = 1.0  # also how soon every daemon sees a halt switched in Redis
T = TypeVar("T")


class Coordinator:
    """Redis for one daemon; `start()` never fails for Redis being down (the daemon starts and says so)."""

    def __init__(self, settings: RedisSettings,
                 on_check: Callable[[float | None, int], None] | None = None) -> None:
        self.settings = settings
        self._on_check = on_check  # told each check's round trip (None: no answer) and the errors so far
        self.problem: str | None = "not connected yet"  # why Redis cannot be used now (/readyz)
        self.halted: dict[str, Any] | None = None  # the shared halt switch, as last read
        self.latency_s = 0.0  # the last health check's round trip
        self.errors = 0
        self.owner = secrets.token_hex(12) + ":"  # this process, in the leases it takes
        self._client: aioredis.Redis | None = None
        self._health: asyncio.Task[None] | None = None
        self._batch = Batch(self.run, self._failed, scripts.BY_NAME)
        self._lingering: dict[str, tuple[str, asyncio.TimerHandle]] = {}  # lease key: value, timer
        self._closing = False

    async def start(self) -> None:
        self._client = _client(self.settings, read_password(self.settings))
        await self.check()
        self._health = asyncio.ensure_future(self._check_forever())

    async def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
        self._closing = True  # a release from now on (an orphan's) is sent at once
        for lease in list(self._lingering):
            self._lingering[lease][1].cancel()
            self._release_lingering(lease)
        await self._batch.close()
        if self._client is not None:
            await self._client.aclose()

    async def check(self) -> None:
        """Write to Redis (a replica answers reads but refuses writes, and signed calls need writes)
        and read the shared halt switch, in one round trip; sets or clears `problem`."""
        started = time.perf_counter()  # not loop.time(): uvloop's has millisecond resolution
        try:
            _alive, raw = await asyncio.gather(
                self._batch.command("SET", ALIVE_KEY + self.owner, "1", "PX", 3000),
                self._batch.command("GET", HALT_KEY))
        except CoordinationUnavailable:
            if self._on_check is not None:
                self._on_check(None, self.errors)
            return
        self.latency_s = time.perf_counter() - started
        if self._on_check is not None:
            self._on_check(self.latency_s, self.errors)
        self.halted = _halt_doc(raw)
        if self.problem is not None:
            log.warning("Redis at %s answers again; shared state in use", self.settings.where)
            self.problem = None

    async def run(self, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """One Redis call, bounded; a failure becomes CoordinationUnavailable and marks the problem."""
        assert self._client is not None, "start() first"
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await call(self._client)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: BaseException) -> CoordinationUnavailable:
        self.errors += 1
        reason = f"Redis at {self.settings.where} does not answer ({_describe(exc)})"
        if self.problem != reason:
            log.error("%s; signed calls are refused until it does", reason)
        self.problem = reason
        return CoordinationUnavailable(reason)

    # The commands of calls (below) go out batched (coord/batch.py); check() and halt on their own.

    async def take(self, keys: list[str], value: str, candidate: int, ttl_ms: int, interval_us: int,
                   most_wait_us: int, want_ms: int, orphan: Orphan) -> tuple[int, int, int]:
        """A signed call's lease, rate slot and nonce in one round trip (scripts.TAKE; `keys`: the
        lease, nonce counter and want of the API key): (1, nonce, wait µs), (0, ms to wait, 0),
        (-1, wait µs, 0) or (-2, pause µs left, 0). A release of this daemon's last call on the key
        still lingering is not sent: TAKE takes that lease over or frees it, whatever its outcome."""
        lease, counter, want = keys
        lingering = self._lingering.pop(lease, None)
        if lingering is not None:
            lingering[1].cancel()
        args = [self.owner, value, str(candidate), ttl_ms, interval_us, most_wait_us, want_ms]
        try:
            found = await self._batch.call_script("take", [lease, counter, RATE_KEY, PAUSE_KEY, want], args,
                                                  orphan=orphan)
        except BaseException:
            # Refused or cut off: TAKE may have run, or not. Free whatever it may have taken, and the
            # last call's lease (a release matches its exact value: harmless for a lease not taken).
            self._send_release(lease, value)
            if lingering is not None:
                self._send_release(lease, lingering[0])
            raise
        return int(found[0]), int(found[1]), int(found[2]) if len(found) > 2 else 0

    def release(self, lease: str, value: str, linger_s: float = 0.0) -> None:
        """Free a lease taken with `value`; not awaited: a call's answer never waits for it. With
        `linger_s`, sent only if this daemon's next call on the key has not begun by then (its TAKE
        does the release's work in the same round trip)."""
        if linger_s <= 0 or self._closing:
            self._send_release(lease, value)
            return
        if lease in self._lingering:  # not expected (a TAKE comes between two releases): send both
            self._release_lingering(lease)
        handle = asyncio.get_running_loop().call_later(linger_s, self._release_lingering, lease)
        self._lingering[lease] = value, handle

    def _release_lingering(self, lease: str) -> None:
        found = self._lingering.pop(lease, None)
        if found is not None:
            found[1].cancel()
            self._send_release(lease, found[0])

    def _send_release(self, lease: str, value: str) -> None:
        self._batch.script("release", [lease], [value]).add_done_callback(self._released)

    def _released(self, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.warning("could not release a key's lease in Redis; it expires on its own within its TTL")

    async def rate(self, interval_us: int, most_wait_us: int) -> tuple[int, int]:
        state, wait = await self._batch.call_script("rate", [RATE_KEY, PAUSE_KEY],
                                                    [interval_us, most_wait_us])
        return int(state), int(wait)

    async def pause(self, seconds: float) -> None:
        await self._batch.call_script("pause", [PAUSE_KEY], [seconds])

    async def get(self, key: str) -> Any:
        return await self._batch.call("GET", key)

    async def set(self, key: str, value: str, ttl_s: int, only_new: bool = False) -> bool:
        """SET with a TTL in seconds; `only_new`: NX (False when the key exists already)."""
        return bool(await self._batch.call("SET", key, value, "EX", ttl_s, *(["NX"] if only_new else [])))

    async def delete_if(self, key: str, value: str) -> None:
        """Delete `key` only if it still holds `value` (scripts.RELEASE)."""
        await self._batch.call_script("release", [key], [value])

    async def set_halt(self, doc: dict[str, Any] | None) -> None:
        """`exmo-proxy halt on|off` with Redis in the config: every daemon sees it within a second."""
        if doc is None:
            await self.run(lambda r: r.delete(HALT_KEY))
        else:
            await self.run(lambda r: r.set(HALT_KEY, json.dumps(doc)))
        self.halted = doc

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_EVERY_S)
            await self.check()


@contextlib.asynccontextmanager
async def connected(settings: RedisSettings) -> AsyncIterator[Coordinator]:
    """A Coordinator for one command (`check`, `halt`); its `problem` says whether Redis answered."""
    coordinator = Coordinator(settings)
    try:
        await coordinator.start()
        yield coordinator
    finally:
        await coordinator.close()


def _client(settings: RedisSettings, password: str | None) -> aioredis.Redis:
    timeout = settings.timeout_s
    # No socket timeout on the primary's connections: Coordinator.run bounds every call as a whole
    # (redis-py's socket timeout would cost a task per command on Python 3.11: asyncio.wait_for).
    # A connection that broke while idle (Redis restarted, a failover) is replaced and its command sent
    # again, twice at most; every command of ours may run twice (scripts.py, records.py say how).
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 2)
    common: dict[str, Any] = {"retry": retry}
    if settings.tls and settings.ca_file is not None:  # certificates are always verified (redis-py's
        common["ssl_ca_certs"] = str(settings.ca_file)  # ssl_cert_reqs is "required")
    if settings.sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves __init__ untyped
            list(settings.sentinels), socket_timeout=timeout, socket_connect_timeout=timeout,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                             "ssl": settings.tls, **common})
        master: aioredis.Redis = sentinel.master_for(
            settings.service, db=settings.db, password=password, ssl=settings.tls, socket_timeout=None,
            socket_connect_timeout=timeout, **common)
        return master
    return aioredis.Redis.from_url(settings.url, password=password, socket_timeout=None,
                                   socket_connect_timeout=timeout, **common)


def _halt_doc(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return {"reason": "(unreadable halt record in Redis: trading stays halted)"}
    return doc if isinstance(doc, dict) else {}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
