"""The order in which EXMO treats a call, from arrival to answer; owns the delay and counters.

Private (signed) call, exmo-api.md §1 to §3 and §5:
  1. query string on a POST → 40038      4. rate window (per IP and per key) → 40034
  2. ``Key`` unknown → 40017               5. random processing delay (``delay_ms``)
  3. ``Sign`` wrong → 40005                6. nonce check → 40009, then the method runs
Step 6 runs with no ``await`` inside it, so the nonce is judged in processing order — which
the delay shuffles, like the in-flight reordering of ccxt#24065 (§3). A refused call never
moves the key's last nonce. Public calls skip 2, 3 and 6 and are limited per IP only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.exchange import errors
from proxy.exchange.params import parse_form
from proxy.simulator import auth, private, public
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.state import Exchange
from proxy.simulator.stats import Stats


@dataclass(frozen=True)
class Call:
    """One API request as the simulator sees it, stripped of HTTP."""

    version: str  # "v1" or "v1.1"
    method: str  # without leading or trailing slash
    verb: str  # "GET" or "POST"
    query_string: str
    query: Mapping[str, str]
    body: bytes
    key: str | None
    sign: str | None
    remote: str


class Simulator:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self._config = config
        self._wall = wall
        self._rng = random.Random(config.seed)  # noqa: S311 - simulated latency, not crypto
        self.exchange = Exchange(config.accounts, wall)
        self.nonces = auth.NonceBook()
        self.window = auth.RateWindow(config.rate_limit, clock)
        self.stats = Stats()

    async def call(self, call: Call) -> Any:
        if call.method in public.PUBLIC:
            return await self._public(call)
        if call.method in private.PRIVATE:
            return await self._private(call)
        raise errors.no_such_method(call.version, call.method)

    async def _public(self, call: Call) -> Any:
        self._no_query_on_post(call)
        params = parse_form(call.body) if call.verb == "POST" else call.query
        self._admit(call, [f"ip:{call.remote}"])
        await self._delay()
        return public.PUBLIC[call.method](self.exchange, params, int(self._wall()))

    async def _private(self, call: Call) -> Any:
        self._no_query_on_post(call)
        # [INF] a GET carries no body: its query is never signed nor read, so it ends in
        # 40017/40005/40009 like any request without a signed nonce.
        body = call.body if call.verb == "POST" else b""
        key = self._known_key(call.key)
        if not auth.signature_ok(self._config.accounts[key], body, call.sign):
            raise errors.bad_signature()
        self._admit(call, [f"ip:{call.remote}", f"key:{key}"])
        await self._delay()
        params = parse_form(body)
        self.nonces.accept(key, params.get("nonce"))
        self.stats.executed(call.method, params)
        return private.execute(self.exchange, key, call.method, params)

    def _no_query_on_post(self, call: Call) -> None:
        if call.verb == "POST" and call.query_string:
            raise errors.get_params_in_post()

    def _known_key(self, key: str | None) -> str:
        if key is None or key not in self._config.accounts:
            raise errors.wrong_api_key()
        return key

    def _admit(self, call: Call, buckets: list[str]) -> None:
        if not self.window.admit(buckets):
            raise errors.rate_limited(self._config.rate_limit_style, call.remote)

    async def _delay(self) -> None:
        if self._config.delay_ms > 0:
            await asyncio.sleep(self._rng.uniform(0, self._config.delay_ms) / 1000)

    def stats_snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot(self.nonces.snapshot())
