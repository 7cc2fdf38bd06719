"""The daemon's listener: HTTP/1.1 on httptools (llhttp), and WebSocket upgrades handed to aiohttp.

Why not aiohttp's server for everything: per request it costs ~58 µs of CPU against ~10 µs for this
protocol on the same loop (bench/RESULTS.md, issue 15), a quarter of a signed call's whole cost. The
parsing is llhttp's, as in uvicorn; this module only frames requests and answers:

- requests on a connection are answered one at a time, in order (pipelining works);
- a body is read whole, up to `max_body` bytes; a larger one (by Content-Length, or as chunks arrive) is
  answered 413 unread and the connection closed; `Expect: 100-continue` is answered when the request's
  turn comes; a malformed request, a target or header over 8190 bytes, more than 128 headers, a head
  over 64 KiB, or a request that goes on past `max_body` + 128 KiB (a header that never ends), gets 400
  and the connection closes; a chunked body's trailers are dropped, not taken as headers;
- keep-alive as the client asks (HTTP/1.0 closes unless it asks otherwise); a connection with nothing
  in progress and no bytes in or answer out for `keepalive_s` is closed;
- an upgrade request (WebSocket; CONNECT) and everything after it on the connection goes to aiohttp
  (`handoff`, the app's RequestHandler): the request is given to it as received, rebuilt from the
  parsed head like uvicorn does, after the answers to any requests before it;
- `shutdown`: idle connections close at once, busy ones after their answer (and a call whose client
  has left is still finished), within a bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from proxy.web.connection import Connection, Serve


class Front:
    """The listener's connections; `serve(call)` answers a request, `handoff()` makes the aiohttp
    protocol an upgrade request is given to."""

    def __init__(self, serve: Serve, handoff: Callable[[], asyncio.Protocol], max_body: int,
                 keepalive_s: float = 75.0) -> None:
        self.serve, self.handoff, self.max_body, self.keepalive_s = serve, handoff, max_body, keepalive_s
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Future[Any]] = set()  # answers being made, also for a client that left
        self.stopping = False
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def listen_tcp(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)
        self._sweep()

    async def listen_unix(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: Connection(self), path)
        self._sweep()

    def _sweep(self) -> None:
        """Close connections silent for keepalive_s with nothing in progress (one timer for all)."""
        now = time.monotonic()
        for connection in list(self.connections):
            if connection.idle() and now - connection.last_active > self.keepalive_s:
                connection.close()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(min(self.keepalive_s / 3, 10.0), self._sweep)

    def close(self) -> None:
        """Stop accepting connections."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def shutdown(self, timeout_s: float) -> None:
        """Close idle connections now and busy ones after their answer; past `timeout_s`, all."""
        self.close()
        self.stopping = True
        deadline = time.monotonic() + timeout_s
        while (self.connections or self.tasks) and time.monotonic() < deadline:
            for connection in list(self.connections):
                if connection.idle():
                    connection.close()
            await asyncio.sleep(0.05)
        for task in list(self.tasks):
            task.cancel()
        for connection in list(self.connections):
            connection.abort()
