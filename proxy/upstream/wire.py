"""A small HTTP/1.1 client for the one upstream: persistent connections, verified TLS, nothing more.

Why not aiohttp's client (the server side stays aiohttp): on the 2-core reference machine its client leg
cost about 200 µs of CPU per call at concurrency 1 (a bare aiohttp proxy used ~305 µs, an aiohttp server
alone ~120 µs), more than the rest of the daemon together (bench/RESULTS.md). The daemon talks to
exactly one origin, with GET and POST, and reads small JSON answers; cookies, redirects, proxies,
auth, multipart and tracing are all cost and no use here.

What it does, and nothing else:

- keeps up to `limit` connections to the origin; an idle one is reused (newest first) unless the peer
  has closed it or it has been idle longer than `idle_s`, well inside common keep-alive timeouts;
- connects to the first of the origin's addresses that answers, racing them (connect.py: happy
  eyeballs, so a black-holed IPv6 address does not eat the connect timeout);
- TLS with `ssl.create_default_context()`: the certificate and the host name are verified;
- parses the answer with httptools (llhttp), decodes gzip/deflate and refuses more than `max_bytes`
  (raw or decoded): http1.py;
- says whether a failure came before any byte of the request was written (`sent=False`: nothing can
  have reached the server, safe to retry) or after (`sent=True`: the outcome is unknown).

The answer is parsed in `data_received`, so a call costs one write and one wake-up of the caller.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from proxy.upstream.connect import Resolver, first_to_connect, resolve
from proxy.upstream.http1 import AnswerReader, Malformed

MIN_ANSWER_S = 0.05  # a request is not written with less time than this left for its answer


class WireError(Exception):
    """The call failed; `sent` says whether any of the request may have reached the server."""

    def __init__(self, message: str, *, sent: bool, timeout: bool = False,
                 cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.sent = sent
        self.timeout = timeout
        self.cause = cause


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes


class _Connection(asyncio.Protocol):
    def __init__(self, max_bytes: int, generation: int) -> None:
        self.max_bytes = max_bytes
        self.generation = generation  # the client's origin generation when it was made
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reader: AnswerReader | None = None
        self._waiter: asyncio.Future[Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, waiter: asyncio.Future[Answer]) -> None:
        assert self.transport is not None
        self._reader, self._waiter = AnswerReader(self.max_bytes), waiter
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self._reader is None or self._waiter is None:
            self.close()  # bytes nobody asked for
            return
        try:
            self._reader.feed(data)
            if self._reader.done:
                self._complete()
        except (Malformed, zlib.error) as exc:
            self._fail(WireError(f"malformed answer: {exc}", sent=True, cause=exc))

    def eof_received(self) -> bool | None:
        self.closed = True
        if self._reader is not None and self._waiter is not None:
            try:
                if self._reader.finish_at_eof():
                    self._complete()
            except Malformed as exc:
                self._fail(WireError(f"malformed answer: {exc}", sent=True, cause=exc))
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(WireError("the server closed the connection before the answer was complete", sent=True,
                             cause=exc))

    def _complete(self) -> None:
        reader, waiter = self._reader, self._waiter
        assert reader is not None and waiter is not None
        try:
            answer = Answer(reader.status, reader.headers, reader.body())
        except (Malformed, zlib.error) as exc:
            self._fail(WireError(f"malformed answer: {exc}", sent=True, cause=exc))
            return
        self._reader = self._waiter = None
        if not reader.keep_alive:
            self.close()
        if not waiter.done():
            waiter.set_result(answer)

    def _fail(self, error: WireError) -> None:
        waiter = self._waiter
        self._reader = self._waiter = None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class WireClient:
    """Requests to one origin (`scheme://host[:port]`); `close()` when done."""

    def __init__(self, origin: str, *, limit: int = 64, idle_s: float = 10.0,
                 max_bytes: int = 16 * 1024 * 1024, user_agent: str = "exmo-signing-proxy",
                 resolver: Resolver = resolve) -> None:
        self.limit, self.idle_s, self.max_bytes, self.user_agent = limit, idle_s, max_bytes, user_agent
        self._resolve = resolver
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the first caller's: looked up once
        self._generation = 0  # a new origin (or close()) makes every older connection unusable
        self.origin = ""
        self.set_origin(origin)

    def set_origin(self, origin: str) -> None:
        if origin == self.origin:
            return
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.origin = origin
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default_port = parts.port is None or parts.port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        self.close()  # connections to the old origin, idle or busy, are never used again

    def close(self) -> None:
        self._generation += 1
        while self._idle:
            self._idle.pop().close()

    def _request_bytes(self, method: str, target: str, headers: Mapping[str, str],
                       body: bytes | None) -> bytes:
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if "\r" in target or "\n" in target or " " in target or fields.count("\n") != len(headers) \
                or fields.count("\r") != len(headers):
            raise ValueError("a header or the target holds a line break, or the target a space")
        length = f"Content-Length: {len(body or b'')}\r\n" if body is not None or method == "POST" else ""
        head = (f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"
                f"User-Agent: {self.user_agent}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
                f"{fields}{length}\r\n")
        return head.encode("latin-1") + (body or b"")

    async def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None, *,
                      timeout_s: float, connect_timeout_s: float) -> Answer:
        """One request (`target` is the path and query string); WireError on failure. Nothing is
        written once `timeout_s` has run out: a request is sent with time left for its answer, or not
        at all (sent=False)."""
        generation = self._generation
        try:
            data = self._request_bytes(method, target, headers, body)  # a malformed one: before waiting
        except (ValueError, UnicodeEncodeError) as exc:
            raise WireError(f"refused to send a malformed request ({exc})", sent=False) from None
        loop = self._loop or self._bind()
        deadline = loop.time() + timeout_s
        if self._slots.locked():  # all `limit` connections are busy: wait for one, within the deadline
            try:
                async with asyncio.timeout_at(deadline):
                    await self._slots.acquire()
            except TimeoutError:
                raise WireError("no free connection to the upstream in time", sent=False,
                                timeout=True) from None
        else:
            await self._slots.acquire()
        try:
            connection = await self._connection(loop, min(connect_timeout_s, deadline - loop.time()))
            if deadline - loop.time() < MIN_ANSWER_S:
                self._put_back(loop, connection)
                raise WireError("no time left to send the request and wait for its answer", sent=False,
                                timeout=True)
            if generation != self._generation:  # the origin changed meanwhile: its Host header, too
                data = self._request_bytes(method, target, headers, body)
            return await self._exchange(loop, connection, data, deadline)
        finally:
            self._slots.release()

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    async def _connection(self, loop: asyncio.AbstractEventLoop, connect_timeout_s: float) -> _Connection:
        now = loop.time()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable() and now - connection.idle_since < self.idle_s:
                return connection
            connection.close()
        if connect_timeout_s <= 0:
            raise WireError("no time left to connect", sent=False, timeout=True)
        generation = self._generation
        try:
            async with asyncio.timeout(connect_timeout_s):
                addresses = await self._resolve(self._host, self._port)
                _, protocol = await first_to_connect(
                    [self._attempt(loop, generation, sockaddr) for _, sockaddr in addresses],
                    close=lambda made: made[0].close())
        except TimeoutError:
            raise WireError(f"connecting took longer than {connect_timeout_s:g}s", sent=False,
                            timeout=True) from None
        except (OSError, ssl.SSLError) as exc:  # refused, DNS, TLS: nothing was sent
            raise WireError(str(exc) or type(exc).__name__, sent=False, cause=exc) from None
        if generation != self._generation:  # the origin changed while connecting
            protocol.close()
            raise WireError("the upstream changed while connecting", sent=False)
        return protocol

    def _attempt(self, loop: asyncio.AbstractEventLoop, generation: int, sockaddr: tuple[Any, ...],
                 ) -> Callable[[], Awaitable[tuple[asyncio.BaseTransport, _Connection]]]:
        """Connecting to one of the origin's addresses (TLS verified against the origin's name)."""
        def attempt() -> Awaitable[tuple[asyncio.BaseTransport, _Connection]]:
            return loop.create_connection(
                lambda: _Connection(self.max_bytes, generation), sockaddr[0], sockaddr[1],
                ssl=self._ssl if self._tls else None, server_hostname=self._host if self._tls else None)
        return attempt

    def _put_back(self, loop: asyncio.AbstractEventLoop, connection: _Connection) -> None:
        if connection.usable() and connection.generation == self._generation:
            connection.idle_since = loop.time()
            self._idle.append(connection)
        else:
            connection.close()

    async def _exchange(self, loop: asyncio.AbstractEventLoop, connection: _Connection, data: bytes,
                        deadline: float) -> Answer:
        waiter: asyncio.Future[Answer] = loop.create_future()
        connection.send(data, waiter)  # from here on, the request may have reached the server
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            answer = await waiter
        except BaseException:
            connection.close()  # a half-read answer or a cancelled call: never reuse
            raise
        finally:
            timer.cancel()
        self._put_back(loop, connection)
        return answer


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(WireError("no answer in time", sent=True, timeout=True))
