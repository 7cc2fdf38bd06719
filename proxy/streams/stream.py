"""One relayed stream: the client's socket, EXMO's socket, the login, two pumps, a close that says why.

The client is upgraded first (its HTTP refusals came before: web/sockets.py); then the daemon connects
to EXMO, and on a private path logs in with the account's key and a nonce drawn from the key's REST
sequence while holding the key's turn, as a signed REST call does (calls/nonce.py): whether EXMO's
WebSocket login shares the REST counter is unconfirmed (exmo-api.md §6.1), and this is right either
way. Until EXMO has answered that login the client's frames wait unread; EXMO's greeting goes through.

After that every frame passes unchanged both ways, except a client's own `login` on a private path,
which is answered here (frames.py). Pings and pongs are per hop: aiohttp answers EXMO's pings and the
client's, and pings a client silent for CLIENT_HEARTBEAT_S (ccxt drops a socket after 60 s without a
pong). A stream ends with a close frame carrying a code and a reason that says what happened (never an
`error` frame the client did not cause: ccxt.pro raises NotSupported on one and then waits for its own
timeout, while a close makes it reconnect on the next `watch_*` call):

    1001  the daemon is shutting down (SIGTERM)          1012  EXMO closed it (maintenance, 24 h limit)
    1011  EXMO refused the login, or it could not be     1013  EXMO unreachable, or the key's turn did
          sent (nonce state, audit log)                        not come: try again
    1009  a frame over MAX_FRAME_BYTES (aiohttp's own)

A client that leaves frames unread for `streams.send_timeout_s` is cut off (relay.py's sweep): what
waits for it is bounded by the socket buffers, never by the daemon's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
from aiohttp import WSMsgType, web

from proxy.streams import frames
from proxy.streams.login import Login
from proxy.streams.parts import Context, Ended, Who

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 * 1024 * 1024  # EXMO's largest frame is an order book snapshot of 400 levels (~30 KB)
CLIENT_HEARTBEAT_S = 30.0  # ping a client silent this long; no pong within half of it closes (aiohttp)
UPSTREAM_HEARTBEAT_S = 60.0  # EXMO pings every 30 s (§6.2); silent twice that long, it gets a ping
CLOSE_TIMEOUT_S = 5.0  # how long a close waits for the other side's close frame
TO_EXMO, TO_CLIENT = "to_exmo", "to_client"
USER_AGENT = "exmo-signing-proxy"


class Stream:
    """A client socket relayed to one EXMO socket; `run()` lasts as long as the stream."""

    def __init__(self, who: Who, client: web.WebSocketResponse, transport: asyncio.Transport | None,
                 context: Context) -> None:
        self.who, self.client, self.context = who, client, context
        self._transport = transport
        self.upstream: aiohttp.ClientWebSocketResponse | None = None
        self.sending_since: float | None = None  # loop time a frame to the client began to wait
        self.frames = {TO_EXMO: 0, TO_CLIENT: 0}
        self.why: str | None = None  # why it ended: client, exmo, maintenance, login_failed, ...
        self.close_code: int | None = None  # the code the client's socket was closed with (1006: dropped)
        self._sending = 0  # frames waiting for the client to take them
        self._login: Login | None = None
        self._maintenance = False
        self._to_client: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._loop = asyncio.get_running_loop()

    async def run(self, session: aiohttp.ClientSession, url: str) -> None:
        try:
            try:
                self.upstream = await self._connect(session, url)
                if self.who.account is not None:
                    self._login = Login(self.who, self.who.account, self.upstream, self.context,
                                        self._send_client)
                    await self._login.run()
            except Ended as ended:
                await self.end(ended.code, ended.text, ended.why)
                return
            self._to_client = asyncio.ensure_future(self._pump_to_client())
            await self._pump_to_exmo()
        except Exception:  # a bug: the socket is upgraded already, so it is closed, not answered
            log.exception("stream %s failed", self.who.request_id)
            await self.end(1011, "internal error; see the daemon log", "internal")
        finally:
            await self._cleanup()

    async def end(self, code: int, text: str, why: str) -> None:
        """Close the client's socket with `code` and a reason (`text`); the pumps then stop. A client
        that does not take the close frame within CLOSE_TIMEOUT_S is dropped."""
        if self.why is None:
            self.why, self.close_code = why, code
        if self.client.closed:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.client.close(code=code, message=frames.reason(f"exmo-proxy: {text}").encode())
        except TimeoutError:
            self._abort()

    def cut_off(self) -> None:
        """The client has not taken a frame for send_timeout_s: drop the connection (relay.py's sweep).
        No close frame could reach a client that does not read."""
        if self.why is None:
            self.why, self.close_code = "slow_client", 1006
        log.warning("stream %s (%s): the client did not read for %gs; disconnected", self.who.request_id,
                    self.who.client or "-", self.context.send_timeout_s)
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    async def _connect(self, session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
        try:
            async with asyncio.timeout(self.context.connect_timeout_s):
                return await session.ws_connect(
                    url, heartbeat=UPSTREAM_HEARTBEAT_S, autoping=True, max_msg_size=MAX_FRAME_BYTES,
                    compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S),
                    headers={"User-Agent": USER_AGENT})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Ended(1013, f"EXMO's WebSocket API is unreachable ({_describe(exc)}); try again",
                        "unreachable") from None

    async def _pump_to_exmo(self) -> None:
        upstream, client, counts = self.upstream, self.client, self.frames
        assert upstream is not None
        private = self.who.account is not None
        metrics = self.context.metrics
        try:
            async for message in client:
                if message.type is WSMsgType.TEXT:
                    text: str = message.data
                    if private and '"login"' in text:
                        is_login, request_id = frames.client_login(text)
                        if is_login:  # the daemon logged in already; the client's frame is answered here
                            await self._send_client(frames.logged_in(request_id, time.time_ns() // 1_000_000))
                            continue
                    await upstream.send_str(text)
                elif message.type is WSMsgType.BINARY:
                    await upstream.send_bytes(message.data)
                else:
                    break  # an error on the client's socket
                counts[TO_EXMO] += 1
                if metrics.enabled:
                    metrics.stream_frames[TO_EXMO] += 1
                    metrics.stream_bytes[TO_EXMO] += _size(message.data)
        except (aiohttp.ClientError, OSError):  # EXMO's socket broke while we sent to it
            await self.end(1012, "the connection to EXMO broke; reconnect", "exmo")

    async def _pump_to_client(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        try:
            async for message in upstream:
                if message.type is WSMsgType.TEXT:
                    if '"info"' in message.data and frames.is_maintenance(message.data):
                        self._maintenance = True
                    await self._send_client(message.data)
                elif message.type is WSMsgType.BINARY:
                    await self._send_client(message.data)
                else:
                    break
        except (aiohttp.ClientError, OSError):
            return  # the client's socket failed (or was cut off): its pump ends the stream
        if self._maintenance:
            await self.end(1012, "EXMO closed the stream for maintenance; reconnect", "maintenance")
        else:
            await self.end(1012, f"EXMO closed the stream (code {upstream.close_code}); reconnect", "exmo")

    async def _send_client(self, data: str | bytes) -> None:
        """One frame to the client. While any frame waits for the client to take it, `sending_since`
        says since when no frame was taken (the sweep reads it); both pumps may send."""
        if not self._sending:
            self.sending_since = self._loop.time()
        self._sending += 1
        try:
            if isinstance(data, str):
                await self.client.send_str(data)
            else:
                await self.client.send_bytes(data)
        finally:
            self._sending -= 1
            self.sending_since = self._loop.time() if self._sending else None  # a frame was taken
        self.frames[TO_CLIENT] += 1
        metrics = self.context.metrics
        if metrics.enabled:
            metrics.stream_frames[TO_CLIENT] += 1
            metrics.stream_bytes[TO_CLIENT] += _size(data)

    async def _cleanup(self) -> None:
        if self.why is None:
            self.why, self.close_code = "client", self.client.close_code
        task = self._to_client
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, OSError):
                await task
        if self.upstream is not None and not self.upstream.closed:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):  # aiohttp's own bound is per read
                    await self.upstream.close()
        if not self.client.closed:
            await self.end(1000, "stream closed", self.why)
        self.context.metrics.stream_closed(self.why)
        if self.who.account is not None:
            params = (("path", self.who.path), ("why", self.why), ("code", str(self.close_code)),
                      ("frames_to_client", str(self.frames[TO_CLIENT])),
                      ("frames_to_exmo", str(self.frames[TO_EXMO])))
            self.context.audit.stream_event(
                request_id=self.who.request_id, client=self.who.client, account=self.who.account.name,
                method="ws/close", params=params, nonce=self._login.nonce if self._login else None,
                outcome="closed", seconds=time.monotonic() - self._started)
        log.info("stream %s %s closed (%s): %d frames to the client, %d to EXMO", self.who.request_id,
                 self.who.path, self.why, self.frames[TO_CLIENT], self.frames[TO_EXMO])


def _size(data: str | bytes) -> int:
    """Payload bytes of a frame (text is UTF-8 on the wire; EXMO's JSON is ASCII, so that is its length)."""
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"handshake answered {exc.status}"
    return type(exc).__name__ if not str(exc) else str(exc)

