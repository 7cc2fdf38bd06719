"""`Turn`: the per-key lock of nonce.py — first come, first served, with a bounded wait built in.

asyncio.Lock plus asyncio.timeout would do the same, but a timeout context per waiting call (a task
cancel and uncancel when it fires, a timer either way) was a measurable share of the daemon's CPU with
many calls queued on one key. Here a waiter is one future and one timer; a turn that ends is handed
straight to the oldest waiter still waiting, so a call arriving meanwhile cannot overtake the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from types import TracebackType


class Turn:
    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._stopped: Callable[[], BaseException] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once: a getpid() on 3.11

    def locked(self) -> bool:
        return self._held

    async def acquire(self, max_wait_s: float | None = None) -> None:
        """Wait for the turn, at most `max_wait_s` seconds (TimeoutError). A free turn is taken at once,
        without suspending, whatever the bound."""
        if not self._held and not self._waiters:
            self._held = True
            return
        if self._stopped is not None:
            raise self._stopped()
        loop = self._loop = self._loop or asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(max_wait_s, _expire, waiter) if max_wait_s is not None else None
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed the turn, then cancelled before using it: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def stop(self, error: Callable[[], BaseException]) -> None:
        """Refuse every call waiting, and every later one that would have to wait, with `error()` (the
        daemon stops sending); the holder, if any, keeps its turn."""
        self._stopped = error
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error())

    def release(self) -> None:
        """End the turn: hand it to the oldest waiter still waiting, or leave it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # still held: it is that waiter's now
                return
        self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
