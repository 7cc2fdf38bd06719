"""Every open stream: admission (caps), the upstream client, the slow-client sweep, SIGTERM.

One aiohttp ClientSession per daemon connects the streams to EXMO (`ws_upstream` + the client's path).
Caps are checked before the upgrade, so a refused client gets an HTTP answer it can read (429, or 503
while draining). The sweep runs a few times per `send_timeout_s`: a stream whose frame to its client has
waited longer than that is cut off, so a client that stops reading costs socket buffers, not memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from proxy.audit.trail import AuditTrail
from proxy.calls.nonce import NonceBook
from proxy.config.sections import Limits, Streams
from proxy.exmo.refusals import Refusal
from proxy.streams.parts import Context, Who
from proxy.streams.stream import Stream
from proxy.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

SHUTDOWN_CODE = 1001  # going away
SHUTDOWN_TEXT = "the daemon is shutting down; reconnect"


class StreamRefused(Refusal):
    """No stream for this client now (a cap, or the daemon is draining); nothing was opened."""

    def __init__(self, status: int, slug: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message, status=status, slug=slug)
        self._retry_after = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {} if self._retry_after is None else {"Retry-After": str(self._retry_after)}


class Relay:
    """The daemon's streams; `start()` and `close()` bracket its life (web/app.py)."""

    def __init__(self, nonces: NonceBook, audit: AuditTrail, metrics: Metrics) -> None:
        self.context = Context(nonces, audit, metrics)
        self.settings = Streams()
        self.url = ""
        self.streams: set[Stream] = set()
        self._elsewhere: set[web.WebSocketResponse] = set()  # admitted, served by the daemon (paper)
        self._by_client: Counter[str | None] = Counter()
        self._draining = False
        self._session: aiohttp.ClientSession | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def configure(self, settings: Streams, limits: Limits, ws_upstream: str) -> None:
        """The settings in force (start-up and SIGHUP); open streams keep their upstream."""
        self.settings, self.url = settings, ws_upstream
        context = self.context
        context.max_wait_s, context.upstream_timeout_s = limits.max_wait_s, limits.upstream_timeout_s
        context.connect_timeout_s, context.send_timeout_s = limits.connect_timeout_s, settings.send_timeout_s

    async def start(self) -> None:
        # A stream holds its connection for life: no pool cap of aiohttp's (100 by default) under ours.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=None))
        self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def close(self) -> None:
        self.begin_drain()  # ends every stream; wait for those ends before the upstream session goes
        await asyncio.gather(*self._closing, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._session is not None:
            await self._session.close()

    def begin_drain(self) -> None:
        """SIGTERM: no new streams; every open one is closed with 1001 now (its client reconnects,
        to another replica if there is one), not at the end of the grace period."""
        if self._draining:
            return
        self._draining = True
        for stream in list(self.streams):
            closing = asyncio.ensure_future(stream.end(SHUTDOWN_CODE, SHUTDOWN_TEXT, "shutdown"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        for socket in list(self._elsewhere):
            closing = asyncio.ensure_future(_close(socket))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @contextlib.asynccontextmanager
    async def counted(self, client: str | None, socket: web.WebSocketResponse) -> AsyncIterator[None]:
        """A stream admitted here but served by the daemon itself, not relayed (a paper account's): it
        counts toward the caps, and a drain closes it as it closes relayed ones."""
        self._elsewhere.add(socket)
        self._by_client[client] += 1
        try:
            yield
        finally:
            self._elsewhere.discard(socket)
            self._by_client[client] -= 1
            if not self._by_client[client]:
                del self._by_client[client]

    def admit(self, client: str | None) -> None:
        """Raise StreamRefused unless one more stream fits (checked before the upgrade)."""
        if self._draining or self._session is None:
            raise StreamRefused(503, "shutting_down", "the daemon is shutting down; open the stream again",
                                retry_after_s=1)
        open_now = len(self.streams) + len(self._elsewhere)
        if open_now >= self.settings.max_open:
            raise StreamRefused(429, "too_many_streams", f"{open_now} streams are open, the most"
                                " this daemon takes (streams.max_open); close one or raise the cap",
                                retry_after_s=5)
        if client is not None and self._by_client[client] >= self.settings.max_per_client:
            raise StreamRefused(429, "too_many_streams", f"client {client!r} has {self._by_client[client]}"
                                " streams open, its most (streams.max_per_client); close one first",
                                retry_after_s=5)

    async def serve(self, who: Who, client: web.WebSocketResponse,
                    transport: asyncio.Transport | None) -> None:
        """Relay one upgraded client socket until it ends."""
        assert self._session is not None
        stream = Stream(who, client, transport, self.context)
        self.streams.add(stream)
        self._by_client[who.client] += 1
        self.context.metrics.stream_opened(who.kind, 1)
        try:
            await stream.run(self._session, self.url + who.path)
        finally:
            self.streams.discard(stream)
            self._by_client[who.client] -= 1
            if not self._by_client[who.client]:
                del self._by_client[who.client]
            self.context.metrics.stream_opened(who.kind, -1)

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            limit = self.context.send_timeout_s
            await asyncio.sleep(min(1.0, limit / 4))
            now = loop.time()
            for stream in list(self.streams):
                waiting_since = stream.sending_since
                if waiting_since is not None and now - waiting_since > limit:
                    stream.cut_off()


async def _close(socket: web.WebSocketResponse) -> None:
    await socket.close(code=SHUTDOWN_CODE, message=SHUTDOWN_TEXT.encode())
