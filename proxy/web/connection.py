"""One client connection of front.py: requests (read by reader.py) answered in order.

A complete request becomes a `Call` queued for the connection's one worker task, which asks
`Listener.serve` and writes the answer; an upgrade request is handed to aiohttp after the answers
before it. Limits and behaviours are listed in front.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from proxy.web.call import Call, Reply
from proxy.web.errors import ProxyError
from proxy.web.reader import Queued, RequestReader

log = logging.getLogger(__name__)

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
    tasks: set[asyncio.Future[Any]]  # answers being made, also for a client that left: shutdown waits


class Connection(RequestReader):
    """One client connection."""

    def __init__(self, front: Listener) -> None:
        super().__init__(front.max_body)
        self.front = front
        self.loop = asyncio.get_running_loop()  # once: on Python 3.11 each lookup is a getpid()
        self.queue: deque[Queued] = deque()
        self.worker: asyncio.Task[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reading = True

    # --- asyncio.Protocol ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, tuple) and peer else None
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        if self._head_done and not self._done:  # gone mid-body: its access line says so (499)
            call = self._call()
            call.refused = ProxyError(499, "client_gone", "the client disconnected before its request was"
                                                          " read")
            self._track(asyncio.ensure_future(self.front.serve(call)))
        self._done = True
        self.queue.clear()  # requests not yet started are not sent for a client that left
        self.resume_writing()

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # --- answering -----------------------------------------------------------------------------------
    def _track(self, task: asyncio.Future[Any]) -> None:
        self.front.tasks.add(task)
        task.add_done_callback(self.front.tasks.discard)

    def _enqueue(self, item: Queued) -> None:
        self.queue.append(item)
        if len(self.queue) >= MAX_QUEUED and self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()
        if self.worker is None:
            self.worker = self.loop.create_task(self._work())
            self._track(self.worker)

    def _last(self, call: Call | None, reply: Reply) -> None:
        """Answer this after what is queued, then close: nothing more is read."""
        self._done = True
        self._enqueue((call, reply, False, False))

    def _upgrade_request(self, rest: bytes) -> None:
        version = self.parser.get_http_version()
        head = [self.parser.get_method(), b" ", self._url, f" HTTP/{version}\r\n".encode()]
        for name, value in self._headers.items():  # as received: decoding them was lossless
            head.append(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape"))
        self._upgrade = b"".join(head) + b"\r\n" + rest
        self._done = True
        if self.worker is None:
            self._hand_over()
        elif self._reading and self.transport is not None:  # held until the answers before it are out
            self._reading = False
            self.transport.pause_reading()

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
            await self._answer_queued()
        except asyncio.CancelledError:  # a shutdown past its bound
            self._give_up()
            raise
        except Exception:
            log.exception("internal error answering a request")
            self._give_up()
        finally:
            self.worker = None
        if self._upgrade is not None:
            self._hand_over()
        elif self._continue_due:
            self._send_continue()

    async def _answer_queued(self) -> None:
        transport = self.transport
        assert transport is not None
        while self.queue:
            call, reply, keep, http10 = self.queue.popleft()
            if call is not None:
                reply = await self.front.serve(call)
            if transport.is_closing():
                return
            keep = keep and not self.front.stopping
            assert reply is not None
            head_only = call is not None and call.method == "HEAD"
            transport.write(reply.http1(call.request_id if call else "", keep, head_only, http10))
            self.last_active = time.monotonic()
            if not keep:
                transport.close()
                return
            if self._writable is not None:
                await self._writable
            if not self._reading and self._upgrade is None and len(self.queue) < MAX_QUEUED // 2:
                self._reading = True
                transport.resume_reading()

    def _give_up(self) -> None:
        self.queue.clear()
        if self.transport is not None:
            self.transport.abort()

    def _continue_now(self) -> None:
        if self.worker is None and not self.queue:
            self._send_continue()

    def _send_continue(self) -> None:
        self._continue_due = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(CONTINUE)

    # --- for Front -----------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Nothing being read, answered or waiting to be."""
        return self.worker is None and not self.queue and not self._head_done

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
