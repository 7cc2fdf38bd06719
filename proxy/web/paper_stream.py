"""A paper account's private WebSocket stream (SPEC §11): EXMO's protocol, served from the paper ledger.

Nothing goes to EXMO: the bot's login frame is answered here (its credentials are placeholders, and
there is no session with EXMO to open), and `spot/wallet`, `spot/orders` and `spot/user_trades` come
from the ledger (exchange/feed.py): a snapshot on subscribe, then an update whenever a paper call or a
fill on the live market changes the account. Public topics belong on `/v1/public` (relayed live);
here they are refused as EXMO refuses a topic it does not serve on a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from proxy.exchange.feed import NOT_A_COMMAND, TOPICS, AccountFeed, command
from proxy.paper.desk import PaperDesk


class PaperStream:
    def __init__(self, desk: PaperDesk, account: str, socket: web.WebSocketResponse) -> None:
        self.desk, self.account, self.socket = desk, account, socket
        self.topics: set[str] = set()
        self._feed = AccountFeed()
        self._sending = asyncio.Lock()  # a snapshot and the updates after it go out in order

    async def serve(self) -> None:
        changed = self.desk.listen(self.account)
        pushing = asyncio.ensure_future(self._push(changed))
        try:
            await self._send({"event": "info", "code": 1, "message": "connection established",
                              "session_id": str(uuid.uuid4())})
            async for message in self.socket:
                if message.type == WSMsgType.TEXT:
                    await self._handle(message.data)
        except ConnectionResetError:
            pass  # the client went away mid-send
        finally:
            self.desk.unlisten(self.account, changed)
            pushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushing

    async def _handle(self, text: str) -> None:
        frame = command(text)
        if frame is None:
            await self._error(*NOT_A_COMMAND)
            return
        request_id, method = frame.get("id"), frame.get("method")
        if method == "login":  # any login: nothing is signed for a paper account
            await self._send({"event": "logged_in", "id": request_id})
        elif method in ("subscribe", "unsubscribe") and isinstance(frame.get("topics"), list):
            for topic in map(str, frame["topics"]):
                await (self._subscribe if method == "subscribe" else self._unsubscribe)(topic, request_id)
        else:
            await self._error(201008, f"unknown method: {method}", request_id)

    async def _subscribe(self, topic: str, request_id: Any) -> None:
        if topic not in TOPICS:
            await self._error(201012, f"unknown topic: {topic} (a paper account's private socket serves"
                                      f" {', '.join(TOPICS)}; market topics on /v1/public)", request_id)
            return
        if topic in self.topics:
            await self._error(201016, f"duplicate subscription: {topic}", request_id)
            return
        account = await self.desk.account(self.account)
        async with self._sending:
            self.topics.add(topic)
            await self._send({"event": "subscribed", "id": request_id, "topic": topic})
            await self._send({"event": "snapshot", "topic": topic,
                              "data": self._feed.snapshot(topic, account)})

    async def _unsubscribe(self, topic: str, request_id: Any) -> None:
        self.topics.discard(topic)
        await self._send({"event": "unsubscribed", "id": request_id, "topic": topic})

    async def _push(self, changed: asyncio.Event) -> None:
        while True:
            await changed.wait()
            changed.clear()
            account = await self.desk.account(self.account)
            async with self._sending:
                for topic, data in self._feed.changes(self.topics, account):
                    await self._send({"event": "update", "topic": topic, "data": data})

    async def _error(self, code: int, message: str, request_id: Any = None) -> None:
        frame: dict[str, Any] = {"event": "error", "code": code, "message": message}
        await self._send({**frame, "id": request_id} if request_id is not None else frame)

    async def _send(self, frame: dict[str, Any]) -> None:
        if not self.socket.closed:
            await self.socket.send_str(json.dumps({"ts": int(time.time() * 1000), **frame},
                                                  separators=(",", ":")))
