"""EXMO's WebSocket API on the simulator: `/v1/public`, `/v1/private`, `/v1/margin/private` (exmo-api.md §6).

A socket gets the `info` greeting; on a private path `login` is checked like EXMO's (`sign` =
base64(HMAC-SHA512(secret, api_key + nonce)), and the nonce must rise above the key's last one: the
simulator shares the REST counter, the stricter of the two readings §6.1 leaves open). `subscribe` and
`unsubscribe` are acknowledged one topic at a time, a subscription starts with a snapshot, and private
topics get updates when the account acts over REST: the session compares the account with what it last
sent and pushes the difference (orders opened and closed, changed balances, new trades). Data shapes are
EXMO's as ccxt.pro's exmo parser documents them. Protocol pings every 30 s (`heartbeat`); `POST
/_sim/ws/maintenance` closes every socket with EXMO's maintenance notice, as EXMO does (§6.2).
Error codes marked [INF] are inferred: §6 does not confirm them for these cases.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from proxy.exchange import errors
from proxy.exchange.feed import NOT_A_COMMAND, TOPICS, AccountFeed, command
from proxy.simulator import market, public
from proxy.simulator.state import Account, Exchange

PATHS = {"/v1/public": False, "/v1/private": True, "/v1/margin/private": True}  # path -> private
PING_S = 30.0
MARKET_TICK_S = 1.0
PUBLIC_KINDS = ("spot/ticker", "spot/trades", "spot/order_book_snapshots", "spot/order_book_updates")


class Hub:
    """Every open socket: REST actions push through it, maintenance closes it."""

    def __init__(self, accounts: dict[str, str], market: Exchange,
                 accept_nonce: Callable[[str, str], None], wall: Callable[[], float] = time.time) -> None:
        self.accounts, self.market, self.accept_nonce, self.wall = accounts, market, accept_nonce, wall
        self.sessions: set[Session] = set()
        self.opened = 0
        self.logins_by_key: Counter[str] = Counter()
        self._trade_ids = itertools.count(1_000_000)
        self._tasks: set[asyncio.Task[None]] = set()

    def snapshot(self) -> dict[str, Any]:
        """For /_sim/stats: sockets opened so far and open now, logins by API key."""
        return {"opened": self.opened, "open": len(self.sessions), "logins": dict(self.logins_by_key)}

    async def market_ticks(self) -> None:
        """Market topics move: every MARKET_TICK_S each public subscription gets an update (the ticker
        again, one new trade, the top of the book), sent to all sockets at once so one slow reader
        delays no one else."""
        while True:
            await asyncio.sleep(MARKET_TICK_S)
            now = int(self.wall())
            sessions = [s for s in self.sessions if any(":" in topic for topic in s.topics)]
            await asyncio.gather(*(s.push_market(now, self._trade_ids) for s in sessions),
                                 return_exceptions=True)

    def flood(self, topic: str, frames: int, size: int) -> int:
        """Test control (`POST /_sim/ws/flood`): `frames` updates of about `size` bytes to every socket
        subscribed to `topic`, as fast as each takes them. How many sockets get them."""
        sessions = [s for s in self.sessions if topic in s.topics]
        for session in sessions:
            task = asyncio.ensure_future(session.flood(topic, frames, size))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(sessions)

    async def changed(self, key: str) -> None:
        """The account of `key` acted over REST: its subscribers get what changed."""
        for session in [s for s in self.sessions if s.key == key]:
            await session.push_changes()

    async def maintenance(self) -> int:
        sessions = list(self.sessions)
        for session in sessions:
            await session.send({"event": "info", "code": 2, "message": "maintenance in progress"})
            await session.ws.close(code=1012, message=b"maintenance in progress")
        return len(sessions)


class Session:
    def __init__(self, hub: Hub, ws: web.WebSocketResponse, private: bool) -> None:
        self.hub, self.ws, self.private = hub, ws, private
        self.key: str | None = None
        self.topics: set[str] = set()
        self._feed = AccountFeed()

    async def send(self, frame: dict[str, Any]) -> None:
        stamped = {"ts": int(self.hub.wall() * 1000), **frame}
        await self.ws.send_str(json.dumps(stamped, separators=(",", ":")))

    async def error(self, code: int, message: str, request_id: Any = None) -> None:
        frame: dict[str, Any] = {"event": "error", "code": code, "message": message}
        await self.send({**frame, "id": request_id} if request_id is not None else frame)

    async def handle(self, text: str) -> None:
        frame = command(text)
        if frame is None:
            await self.error(*NOT_A_COMMAND)
            return
        request_id, method = frame.get("id"), frame.get("method")
        if method == "login" and self.private:
            await self._login(frame, request_id)
        elif method in ("subscribe", "unsubscribe") and isinstance(frame.get("topics"), list):
            act = self._subscribe if method == "subscribe" else self._unsubscribe
            for topic in frame["topics"]:
                await act(str(topic), request_id)
        else:
            await self.error(201008, f"unknown method: {method}", request_id)

    async def _login(self, frame: dict[str, Any], request_id: Any) -> None:
        key, nonce, sign = frame.get("api_key"), frame.get("nonce"), frame.get("sign")
        secret = self.hub.accounts.get(key) if isinstance(key, str) else None
        if secret is None or isinstance(nonce, bool) or not isinstance(nonce, int | str):
            await self.error(40017, "Wrong api key", request_id)  # [INF] the REST code
            return
        assert isinstance(key, str)
        digest = hmac.new(secret.encode(), f"{key}{nonce}".encode(), hashlib.sha512).digest()
        if not isinstance(sign, str) or not hmac.compare_digest(base64.b64encode(digest).decode(), sign):
            await self.error(40005, "Authorization error, incorrect signature", request_id)  # [INF]
            return
        try:
            self.hub.accept_nonce(key, str(nonce))
        except errors.ExmoError as exc:
            await self.error(40009, str(exc.payload.get("error", "nonce")), request_id)  # [INF]
            return
        self.key = key
        self.hub.logins_by_key[key] += 1
        await self.send({"event": "logged_in", "id": request_id})

    async def _subscribe(self, topic: str, request_id: Any) -> None:
        problem = self._check(topic)
        if problem is not None:
            await self.error(*problem, request_id)
            return
        self.topics.add(topic)
        await self.send({"event": "subscribed", "id": request_id, "topic": topic})
        await self.send({"event": "snapshot", "topic": topic, "data": self._snapshot(topic)})

    async def _unsubscribe(self, topic: str, request_id: Any) -> None:
        self.topics.discard(topic)
        await self.send({"event": "unsubscribed", "id": request_id, "topic": topic})

    def _check(self, topic: str) -> tuple[int, str] | None:
        if topic in self.topics:
            return 201016, f"duplicate subscription: {topic}"
        if topic in TOPICS:
            if not self.private or self.key is None:
                return 201012, f"unknown topic: {topic} (private topics need a login on /v1/private)"  # [INF]
            return None
        kind, _, pair = topic.partition(":")
        if kind not in PUBLIC_KINDS:
            return 201012, f"unknown topic: {topic}"
        if pair not in {p.name for p in market.PAIRS}:
            return 201030, f'pair is not exists, pair: "{pair}"'
        return None

    def _snapshot(self, topic: str) -> Any:
        now = int(self.hub.wall())
        if topic in TOPICS:
            return self._feed.snapshot(topic, self._account())
        kind, _, name = topic.partition(":")
        if kind == "spot/ticker":
            return public.ticker(self.hub.market, {}, now)[name]
        if kind == "spot/trades":  # in WS frames trade_id and date are numbers (REST sends strings)
            return [{**row, "trade_id": int(row["trade_id"]), "date": int(row["date"])}
                    for row in public.trades(self.hub.market, {"pair": name}, now)[name]]
        depth = "25" if "snapshots" in kind else "400"
        return public.order_book(self.hub.market, {"pair": name, "limit": depth}, now)[name]

    async def push_market(self, now: int, trade_ids: Iterator[int]) -> None:
        for topic in [t for t in self.topics if ":" in t]:
            kind, _, name = topic.partition(":")
            if kind == "spot/ticker":
                data: Any = public.ticker(self.hub.market, {}, now)[name]
            elif kind == "spot/trades":
                latest = public.trades(self.hub.market, {"pair": name}, now)[name][0]
                data = [{**latest, "trade_id": next(trade_ids), "date": now}]
            elif kind == "spot/order_book_snapshots":
                data = self._snapshot(topic)
            else:  # order_book_updates: the top level of each side again (a valid delta)
                book = public.order_book(self.hub.market, {"pair": name, "limit": "1"}, now)[name]
                data = {"ask": book["ask"], "bid": book["bid"]}
            await self.send({"event": "update", "topic": topic, "data": data})

    async def flood(self, topic: str, frames: int, size: int) -> None:
        pad = "x" * size
        try:
            for _ in range(frames):
                if self.ws.closed or topic not in self.topics:
                    return
                await self.send({"event": "update", "topic": topic, "data": {"pad": pad}})
        except (ConnectionResetError, RuntimeError):
            return  # the socket went away mid-flood

    async def push_changes(self) -> None:
        for topic, data in self._feed.changes(self.topics, self._account()):
            await self.send({"event": "update", "topic": topic, "data": data})

    def _account(self) -> Account:
        assert self.key is not None
        return self.hub.market.accounts[self.key]
