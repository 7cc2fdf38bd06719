"""Paper trading (SPEC §11): a paper account's private calls are answered here, never sent to EXMO.

The shared engine (proxy/exchange) runs on EXMO's live market (`LiveMarket`): the pairs' rules from
`pair_settings`, and the order book of the pair an order is placed on, read fresh for that order,
through the daemon's own public path (its rate limit, shared with the bots' public reads, and its
coalescing of identical reads in flight). Resting orders are checked against the live books every
POLL_S (`watch`), one `order_book` read for every pair that has any. Each change is computed on a copy
of the account and kept only once the ledger has it on disk (ledger.py); one change at a time.

What a paper account cannot do (withdrawals, EX-CODEs, margin, stop orders, deposit addresses,
wallet history) is refused, 501 `not_in_paper_mode`, rather than pretended; `margin/pair/list` answers
that no pair is open for margin (ccxt reads it when it loads markets).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from proxy.exchange import orders, reports
from proxy.exchange.book import Book
from proxy.exchange.ledger import Account
from proxy.exchange.params import Params
from proxy.exchange.rules import PairRules
from proxy.exmo.refusals import Refusal
from proxy.paper.ledger import LedgerError, PaperLedger, clone

log = logging.getLogger(__name__)

Fetch = Callable[[str, Mapping[str, str]], Awaitable[Any]]  # a public method's decoded answer
Answer = Callable[[orders.Venue, Account, Params], Any]

CHANGES: Mapping[str, Answer] = {"order_create": orders.order_create, "order_cancel": orders.order_cancel}


def _no_margin_pairs(venue: orders.Venue, account: Account, params: Params) -> Any:
    """Paper trading is spot only: no pair is open for margin (ccxt reads this to load markets)."""
    return {"pairs": []}


READS: Mapping[str, Answer] = {
    "user_info": reports.user_info, "user_open_orders": reports.user_open_orders,
    "user_trades": reports.user_trades, "user_cancelled_orders": reports.user_cancelled_orders,
    "order_trades": reports.order_trades, "margin/pair/list": _no_margin_pairs,
}
RULES_TTL_S = 300.0  # pair_settings read again after this long
BOOK_FRESH_S = 1.0  # an order is filled against a book at most this old
POLL_S = 2.0  # resting orders are checked against the live books this often


class PaperRefusal(Refusal):
    status, slug = 501, "not_in_paper_mode"


class MarketUnavailable(Refusal):
    status, slug = 503, "paper_market_unavailable"


class LedgerUnavailable(Refusal):
    status, slug = 503, "paper_ledger_unavailable"


class LiveMarket:
    """The engine's venue on EXMO's live prices: what `prepare` read, plus the ledger's ids."""

    def __init__(self, fetch: Fetch, ledger: PaperLedger, clock: Callable[[], float] = time.time) -> None:
        self._fetch, self._ledger, self._clock = fetch, ledger, clock
        self._rules: dict[str, PairRules] = {}
        self._rules_at = -RULES_TTL_S
        self._books: dict[str, tuple[float, Book]] = {}

    def next_id(self) -> int:
        return self._ledger.next_id()

    def now(self) -> int:
        return int(self._clock())

    def rules(self, pair: str) -> PairRules | None:
        return self._rules.get(pair)

    def book(self, pair: PairRules) -> Book:
        kept = self._books.get(pair.name)
        return kept[1] if kept is not None else Book((), ())

    async def prepare(self, pairs: list[str], fresh_s: float = BOOK_FRESH_S, books: bool = True) -> None:
        """Make the rules and (`books`) the books of `pairs` current (MarketUnavailable if EXMO cannot
        say)."""
        now = time.monotonic()
        try:
            if now - self._rules_at > RULES_TTL_S or any(p not in self._rules for p in pairs):
                settings = await self._fetch("pair_settings", {})
                self._rules = {name: PairRules.from_settings(name, raw) for name, raw in settings.items()}
                self._rules_at = now
            stale = [p for p in pairs if books and p in self._rules
                     and now - self._books.get(p, (-fresh_s - 1,))[0] > fresh_s]
            if stale:
                found = await self._fetch("order_book", {"pair": ",".join(stale), "limit": "100"})
                for name in stale:
                    self._books[name] = (now, Book.from_order_book(found.get(name) or {}))
        except (ValueError, TypeError, AttributeError, Refusal) as exc:
            raise MarketUnavailable(f"EXMO's live market could not be read for paper trading ({exc});"
                                    " nothing was done, try again") from None


class PaperDesk:
    def __init__(self, ledger: PaperLedger, market: LiveMarket) -> None:
        self.ledger, self.market = ledger, market
        self._lock = asyncio.Lock()

    async def call(self, account: str, method: str, params: Params) -> Any:
        """EXMO's answer for `method` on the paper account `account`: a payload, or ExmoError (EXMO's
        own error answer: insufficient funds, below the minimum, …)."""
        answer = CHANGES.get(method) or READS.get(method)
        if answer is None:
            raise PaperRefusal(f"{method} is not available to a paper account (paper mode trades spot"
                               " orders and reads their results; nothing leaves the daemon)")
        if params.get("pair"):  # its rules (a comma list for user_trades); the book for an order
            pairs = [p.strip() for p in params["pair"].split(",") if p.strip()]
            await self.market.prepare(pairs, books=method == "order_create")
        async with self._lock:
            before = self._account(account)
            after = clone(before)
            payload = answer(self.market, after, params)  # ExmoError: nothing changed
            if method in CHANGES:
                self._commit(account, before, after)
            return payload

    async def watch(self) -> None:
        """Every POLL_S, fill what the live books cross (runs while the daemon does)."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self.check_resting()
            except (MarketUnavailable, LedgerUnavailable) as exc:
                log.warning("paper: resting orders not checked this time: %s", exc)

    async def check_resting(self) -> int:
        """One pass over every resting paper order against fresh books; how many fills."""
        pairs = sorted({o.pair.name for a in self.ledger.accounts.values() for o in a.orders.values()})
        if not pairs:
            return 0
        await self.market.prepare(pairs, fresh_s=0.0)
        fills = 0
        async with self._lock:
            for name, before in list(self.ledger.accounts.items()):
                after = clone(before)
                for pair in {o.pair.name for o in before.orders.values()}:
                    rules = self.market.rules(pair)
                    if rules is not None:
                        fills += len(orders.cross(self.market, after, rules, self.market.book(rules)))
                if len(after.trades) != len(before.trades):
                    self._commit(name, before, after)
        return fills

    def _account(self, name: str) -> Account:
        try:
            self.ledger.ensure_open()
            return self.ledger.account(name, self.market.now())
        except LedgerError as exc:
            raise LedgerUnavailable(str(exc)) from None

    def _commit(self, name: str, before: Account, after: Account) -> None:
        try:
            self.ledger.commit(name, before, after)
        except LedgerError as exc:
            raise LedgerUnavailable(f"{exc}; the paper order was not placed or changed") from None
