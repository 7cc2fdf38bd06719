"""One client connection of front.py: requests framed by httptools (llhttp), answered in order.

httptools calls the `on_*` methods while `feed_data` runs; a complete request becomes a `Call` queued
for the connection's one worker task, which asks `Listener.serve` and writes the answer. Limits and
behaviours are listed in front.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import httptools
from multidict import CIMultiDict

from proxy.exmo.refusals import error_body
from proxy.web.call import Call, Reply
from proxy.web.errors import ProxyError

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # the request line and all headers
MAX_FIELD_BYTES = 8190  # the target, or one header: aiohttp's limits, as before this module
MAX_QUEUED = 16  # pipelined requests read ahead of the one being answered
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Serve = Callable[[Call], Awaitable[Reply]]


class Listener(Protocol):
    """What a connection needs of front.py's `Front`."""

    serve: Serve
    handoff: Callable[[], asyncio.Protocol]
    max_body: int
    stopping: bool
    connections: set[Connection]


class _Malformed(Exception):
    """Raised by a callback: the request is refused with 400."""


class _Stop(Exception):
    """Raised by a callback: read nothing more (the last request is queued)."""



class Connection(asyncio.Protocol):
    """One client connection (httptools calls the `on_*` methods while `feed_data` runs)."""

    def __init__(self, front: Listener) -> None:
        self.front = front
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.queue: deque[tuple[Call | None, Reply | None, bool]] = deque()  # call or final reply, keep-alive
        self.worker: asyncio.Task[None] | None = None
        self.last_data = time.monotonic()
        self._writable: asyncio.Future[None] | None = None
        self._reading = True
        self._done = False  # no more requests are read: the last one is queued, or the client left
        self._upgrade: bytes | None = None  # the upgrade request to hand over after the answers before it
        self._continue_due = False
        self._url = b""
        self._head: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False
        self._reading_body = False  # the head is in, the message is not complete
        self._gone: asyncio.Future[Reply] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        if self._reading_body and not self._done:  # gone mid-body: its access line says so (499)
            call = self._call()
            call.refused = ProxyError(499, "client_gone", "the client disconnected before its request was"
                                                          " read")
            self._gone = asyncio.ensure_future(self.front.serve(call))
        self._done = True
        self.queue.clear()  # requests not yet started are not sent for a client that left
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        self.last_data = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_request(data[upgrade.args[0]:])
        except httptools.HttpParserError as exc:
            raised = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else None
            if isinstance(raised, _Stop):
                return
            if raised is not None and not isinstance(raised, _Malformed):
                log.error("internal error reading a request", exc_info=raised)
                self._last(None, Reply.json(error_body("internal", "internal error; see the daemon log"),
                                            500))
                return
            reason = str(raised or exc) or type(exc).__name__
            log.warning("refused a malformed request: %s", reason)
            self._last(None, Reply.json(error_body("bad_http", f"malformed HTTP request: {reason}"), 400))

    # --- httptools callbacks -------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url, self._head, self._head_bytes = b"", [], 0
        self._body, self._body_bytes, self._too_large = [], 0, False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))
        if len(self._url) > MAX_FIELD_BYTES:
            raise _Malformed(f"the request target is over {MAX_FIELD_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.append((name, value))
        self._count(len(name) + len(value) + 4)
        if len(name) + len(value) + 2 > MAX_FIELD_BYTES:
            raise _Malformed(f"a header is over {MAX_FIELD_BYTES} bytes")

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _Malformed(f"request line and headers over {MAX_HEAD_BYTES} bytes")

    def on_headers_complete(self) -> None:
        hosts = 0
        for name, value in self._head:
            lower = name.lower()
            if lower == b"host":
                hosts += 1
            elif lower == b"content-length" and value.strip().isdigit() and int(value) > self.front.max_body:
                self._too_large = True
            elif lower == b"expect" and value.strip().lower() == b"100-continue":
                self._continue_due = True
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):  # RFC 9112 §3.2
            raise _Malformed("an HTTP/1.1 request needs exactly one Host header")
        if self.parser.should_upgrade():
            self._continue_due = self._too_large = False
            return
        self._reading_body = True
        if self._too_large:
            self._continue_due = False
            self.on_message_complete()  # answered 413 unread
            raise _Stop
        if self._continue_due and self.worker is None and not self.queue:
            self._send_continue()

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_bytes += len(body)
        if self._body_bytes > self.front.max_body:  # chunked, over the limit: refused as it stands
            self._too_large = True
            self._body = []
            self.on_message_complete()
            raise _Stop
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return  # HttpParserUpgrade follows
        self._continue_due = self._reading_body = False
        call = self._call()
        if self._too_large:
            call.refused = ProxyError(413, "body_too_large", "the body is larger than limits.max_body_bytes")
            self._done = True  # the rest of the body is not read: the connection closes after the answer
        self._enqueue((call, None, self.parser.should_keep_alive() and not self._too_large))

    def _call(self) -> Call:
        headers = CIMultiDict((n.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
                              for n, v in self._head)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        return Call(self.parser.get_method().decode("ascii", "replace"),
                    self._url.decode("utf-8", "surrogateescape"), headers, body, self.remote, self.transport)

    # --- answering -----------------------------------------------------------------------------------
    def _enqueue(self, item: tuple[Call | None, Reply | None, bool]) -> None:
        self.queue.append(item)
        if len(self.queue) >= MAX_QUEUED and self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())

    def _last(self, call: Call | None, reply: Reply) -> None:
        """Answer this after what is queued, then close: nothing more is read."""
        self._done = True
        self._enqueue((call, reply, False))

    def _upgrade_request(self, rest: bytes) -> None:
        version = self.parser.get_http_version()
        head = [self.parser.get_method(), b" ", self._url, f" HTTP/{version}\r\n".encode()]
        for name, value in self._head:
            head += [name, b": ", value, b"\r\n"]
        self._upgrade = b"".join(head) + b"\r\n" + rest
        self._done = True
        if self.worker is None:
            self._hand_over()

    def _hand_over(self) -> None:
        transport, raw = self.transport, self._upgrade
        if transport is None or raw is None or transport.is_closing():
            return
        self.front.connections.discard(self)
        protocol = self.front.handoff()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(raw)
        if not self._reading:
            transport.resume_reading()

    async def _work(self) -> None:
        try:
            while self.queue:
                call, reply, keep = self.queue.popleft()
                if call is not None:
                    reply = await self.front.serve(call)
                if self.transport is None or self.transport.is_closing():
                    return
                keep = keep and not self.front.stopping
                assert reply is not None
                self._write(reply, call, keep)
                if not keep:
                    self.transport.close()
                    return
                if self._writable is not None:
                    await self._writable
                if not self._reading and len(self.queue) < MAX_QUEUED // 2:
                    self._reading = True
                    self.transport.resume_reading()
        finally:
            self.worker = None
        if self._upgrade is not None:
            self._hand_over()
        elif self._continue_due:
            self._send_continue()

    def _send_continue(self) -> None:
        self._continue_due = False
        if self.transport is not None:
            self.transport.write(CONTINUE)

    def _write(self, reply: Reply, call: Call | None, keep: bool) -> None:
        assert self.transport is not None
        if call is None:
            self.transport.write(reply.http1("", keep, head_only=False))
        else:
            self.transport.write(reply.http1(call.request_id, keep, head_only=call.method == "HEAD"))

    # --- for Front -----------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Nothing being answered or waiting to be."""
        return self.worker is None and not self.queue

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
        if self.transport is not None:
            self.transport.abort()

