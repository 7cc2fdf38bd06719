"""Per-key nonces: strictly increasing, durable, and never reordered on the wire.

EXMO wants a nonce in every signed body, larger than any it has accepted for that key before
(exmo-api.md §3), and it compares nonces in the order it *processes* requests, not the order they
were signed: two requests in flight at once can be processed in either order, and the later nonce
winning rejects the earlier one with 40009 (ccxt#24065). The design, and why:

1. One signed request per API key in flight. A FIFO lock per key is taken before the nonce is drawn
   and held until EXMO's answer arrives or the request is abandoned at the upstream timeout. So no
   concurrency among clients can make our own nonces arrive out of order. An abandoned request
   cannot hurt the next one: if EXMO processes it late, its nonce is the lower one, so it is the one
   rejected. The cost is one round trip per call per key (~10 calls/s at 100 ms), which is EXMO's
   own limit of 10 requests/second (§5); accounts with different keys run in parallel.
2. Values are Unix milliseconds, as EXMO recommends and ccxt sends: next = max(last + 1, now_ms). A
   clock stepping backwards only slows the climb; it never repeats or lowers a nonce.
3. Durability without an fsync per call, and without a call waiting for the disk. No nonce above
   the durable *ceiling* (the last one written atomically and fsynced) is ever handed out; nonces
   below it cost no I/O. Once a key has used half of its window, the next ceiling (a window above)
   is written by a worker thread while calls go on below the current one; a call waits for the disk
   only when every number up to the durable ceiling is used before that write lands. The headroom
   is AHEAD numbers: 5 s of clock, or 1.7 s at the 3,000 calls/s one key reaches against an
   upstream that answers at once (bench/RESULTS.md). An atomic write takes 0.75 ms here (p99
   1.5 ms, idle ext4 on virtio); under the bench's load the calls that waited for one took up to
   ~200 ms before this design. So a call waits only on a disk stalled for seconds. Two exceptions,
   one write each: a call right after a start, before its key's first write has landed (after a
   restart every number up to the ceiling may have been used, so start-up begins that write for
   every key at once), and a resync far above our counter (4.). When the clock has run past the
   ceiling (an idle key), the numbers left below it are used meanwhile: still strictly increasing,
   and EXMO asks for nothing else. After a restart, even a kill -9, counting resumes above the
   ceiling, so above anything that could have been sent. If a ceiling cannot be written (full or
   read-only disk), the numbers below the durable one are used and then none: we never sign with a
   nonce we could not make durable.
4. Resync. A 40009 names the highest nonce EXMO has seen ("…used before \"N\""): another program
   used the key. `observe(N)` lifts our counter above it; the caller retries that request once
   (a 40009 is a definite rejection, so the retry cannot execute twice).
5. Several daemons on one key (Redis, calls/lease.py): the per-key turn becomes a lease in Redis,
   held from the nonce to EXMO's answer, and the nonce the highest of the shared counter + 1, the
   clock and this sequence (so its persisted ceiling still holds when Redis lost writes), made
   durable here before it is used (`adopt`). A lease can expire under a holder whose call hangs; then
   EXMO's own nonce check is the fencing token: the later of two calls in flight is refused with
   40009, never executed twice, because nonces only grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from proxy.calls.nonce_store import (
    MAX_NONCE,
    NonceExhausted,
    NonceStateError,
    NonceStore,
    key_id,
    wall_clock_ms,
)
from proxy.calls.turns import Turn

log = logging.getLogger(__name__)

WINDOW = 10_000  # one ceiling write per 10 s of clock, or per 10,000 calls
AHEAD = WINDOW // 2  # the next ceiling is written while this many numbers remain below the current one


class NonceSequence:
    """The nonce counter of one API key. Call `next()`/`observe()` only while holding `lock`."""

    def __init__(self, store: NonceStore, api_key: str, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.lock = Turn()  # FIFO, with the bounded wait dispatch.py needs
        self._store = store
        self._kid = key_id(api_key)
        self._clock = clock
        self._ceiling = store.load(self._kid)  # durable: on disk and fsynced
        self._last = self._ceiling  # after a restart, everything up to the ceiling may have been used
        self._writing: asyncio.Task[None] | None = None  # the next ceiling, on its way to the disk

    @property
    def last(self) -> int:
        return self._last

    @property
    def ceiling(self) -> int:
        """The durable ceiling: no nonce above it has been handed out."""
        return self._ceiling

    def candidate(self) -> int:
        """The nonce this sequence would use next: above the last one, the clock if the durable ceiling
        allows, else the numbers left below it (an idle key, while its next ceiling is written)."""
        clock_next = max(self._last + 1, self._clock())
        if clock_next > self._ceiling and self._last < self._ceiling:
            return self._last + 1
        return clock_next

    async def next(self) -> int:
        """The next nonce, never above the durable ceiling."""
        nonce = self.candidate()
        await self.adopt(nonce)
        return nonce

    async def adopt(self, nonce: int) -> None:
        """Use `nonce` (above the last one: `candidate()`, or what the shared counter gave in Redis
        mode, calls/lease.py), waiting for the disk only if it is above the durable ceiling."""
        if nonce > MAX_NONCE - WINDOW:
            raise NonceExhausted(
                "nonce space exhausted: this key's nonce reached the int64 limit; create a new API key"
            )
        if nonce > self._ceiling:
            await self._cover(nonce)
        self._last = nonce
        self.write_ahead(max(nonce, self._clock()))

    def write_ahead(self, candidate: int | None = None) -> None:
        """Start writing the next ceiling if less than AHEAD numbers are left above `candidate` (the next
        nonce's lower bound) and no write is in flight. At start-up this runs for every key, so even the
        first call of a key waits only if it comes before that write lands."""
        if candidate is None:
            candidate = max(self._last + 1, self._clock())
        if candidate > self._ceiling - AHEAD and self._writing is None:
            self._start_write(max(candidate, self._ceiling) + WINDOW)

    def observe(self, used: int) -> None:
        """EXMO says it has seen `used`: continue above it (40009 resync). No I/O: the next
        `next()` waits for a ceiling above it before the new nonce is used."""
        if used > self._last:
            log.warning("nonce resync: EXMO has seen %d, ours was %d; continuing above it", used, self._last)
            self._last = min(used, MAX_NONCE)

    async def settle(self) -> None:
        """Wait for a ceiling write in flight (shutdown: before the state directory's lock is let go)."""
        if self._writing is not None:
            with contextlib.suppress(NonceStateError):
                await asyncio.shield(self._writing)

    async def _cover(self, nonce: int) -> None:
        """Make the durable ceiling reach `nonce`: the write in flight may do it; if not (or if it
        failed), one more, and a failure of that one says why."""
        await self.settle()
        if nonce <= self._ceiling:
            return
        await asyncio.shield(self._start_write(nonce + WINDOW))

    def _start_write(self, ceiling: int) -> asyncio.Task[None]:
        writing = self._writing = asyncio.ensure_future(self._write(min(ceiling, MAX_NONCE)))
        writing.add_done_callback(_retrieved)  # a failure is logged and on /readyz; a waiter re-raises it
        return writing

    async def _write(self, ceiling: int) -> None:
        try:
            await asyncio.to_thread(self._store.save, self._kid, ceiling)
        except NonceStateError as exc:
            log.warning("%s; nonces go on below the durable ceiling (%d numbers left), then stop",
                        exc, self._ceiling - self._last)
            raise
        finally:
            self._writing = None
        self._ceiling = max(self._ceiling, ceiling)


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class NonceBook:
    """The sequences of every configured key; shared by accounts that use the same key."""

    def __init__(self, state_dir: Path, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._store = NonceStore(state_dir)
        self._store.prepare()
        self.close = self._store.release
        self._clock = clock
        self._sequences: dict[str, NonceSequence] = {}

    @property
    def problem(self) -> str | None:
        """Why signing is refused right now, if the nonce state cannot be written."""
        return self._store.last_error

    def load_keys(self, api_keys: Iterable[str]) -> None:
        """Read every key's state now: a bad state file fails start-up, or refuses a reload, here."""
        for api_key in api_keys:
            self.sequence(api_key)

    def write_ahead(self) -> None:
        """Start each key's next ceiling on its way to the disk (after load_keys, with the loop running)."""
        for sequence in self.sequences():
            sequence.write_ahead()

    async def settle(self) -> None:
        """Let every ceiling write in flight finish (before `close`)."""
        for sequence in self.sequences():
            await sequence.settle()

    def sequences(self) -> list[NonceSequence]:
        return list(self._sequences.values())

    def sequence(self, api_key: str) -> NonceSequence:
        if api_key not in self._sequences:
            self._sequences[api_key] = NonceSequence(self._store, api_key, self._clock)
        return self._sequences[api_key]
