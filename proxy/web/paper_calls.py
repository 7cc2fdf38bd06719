"""Paper trading in the daemon (SPEC §11): the desk (proxy/paper) wired to the daemon's public path,
and a paper account's private call answered as EXMO would answer it. Nothing here signs or sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from proxy.calls.dispatch import Dispatcher
from proxy.config.model import Config
from proxy.exchange.errors import ExmoError
from proxy.exmo.answers import NOT_JSON
from proxy.exmo.signing import Params
from proxy.paper.desk import LiveMarket, MarketUnavailable, PaperDesk
from proxy.paper.ledger import PaperLedger
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import UpstreamResponse

JSON = "application/json; charset=utf-8"
READ_WAIT_S = 5.0  # a market read for paper trading waits this long for a rate slot


def desk(config: Config, dispatcher: Dispatcher) -> PaperDesk:
    """The desk over `state_dir`'s ledger and EXMO's live market, read through `dispatcher`."""

    async def fetch(method: str, params: Mapping[str, str]) -> Any:
        answer = await dispatcher.public("GET", f"/v1.1/{method}", tuple(params.items()), READ_WAIT_S,
                                         cached_ok=method == "pair_settings")  # books and trades: as now
        doc = answer.doc
        if doc is NOT_JSON or not isinstance(doc, dict) or doc.get("result") is False:
            raise MarketUnavailable(f"{method} answered {answer.body[:200]!r}")
        return doc

    ledger = PaperLedger(config.state_dir, config.paper.balances)
    return PaperDesk(ledger, LiveMarket(fetch, ledger))


@contextlib.asynccontextmanager
async def running(paper: PaperDesk, now: bool) -> AsyncIterator[None]:
    """Resting orders watched while the daemon runs; the ledger opened `now` (there are paper
    accounts), else by the first paper call (a reload may make an account paper)."""
    if now:
        paper.ledger.open()
    watch = asyncio.ensure_future(paper.watch())
    try:
        yield
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        await paper.close()


async def answer(paper: PaperDesk, metrics: Metrics, account: str, method: str,
                 params: Params) -> UpstreamResponse:
    """EXMO's answer for a paper account's call: the engine's payload, or EXMO's own error answer
    (HTTP 200, as EXMO sends it); the daemon's refusals (not paper-able, no market, no ledger) raise."""
    found: dict[str, str] = {}
    for key, value in params:  # the first value of a repeated key wins, as at EXMO
        if key != "nonce":
            found.setdefault(key, value)
    metrics.paper_call(method)
    try:
        payload = await paper.call(account, method, found)
    except ExmoError as exc:
        payload = exc.payload
    return UpstreamResponse(200, json.dumps(payload, separators=(",", ":")).encode(), JSON)
