"""Paper trading (SPEC §11): a paper account's private calls are answered here, never sent to EXMO.

The shared engine (proxy/exchange) runs on EXMO's live market (`LiveMarket`): the pairs' rules from
`pair_settings`, and the order book of the pair an order is placed on, read fresh for that order,
through the daemon's own public path (its rate limit, shared with the bots' public reads, and its
coalescing of identical reads in flight). Resting orders are checked against the live market every
POLL_S (`watch`): one `order_book` and one `trades` read for every pair that has any; the book's
levels at or better than an order's price fill it, and so do EXMO's trades through its price since
the last look. Each change is computed on a copy
of the account and kept only once the ledger has it on disk (ledger.py); one change at a time.

What a paper account cannot do (withdrawals, EX-CODEs, margin, stop orders, deposit addresses,
wallet history) is refused, 501 `not_in_paper_mode`, rather than pretended; `margin/pair/list` answers
that no pair is open for margin (ccxt reads it when it loads markets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from proxy.exchange import orders, reports
from proxy.exchange.book import Book, Level
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
RULES_RETRY_S = 10.0  # and for a pair it does not name, at most this often
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
        # per pair: (buying, price) → (the level's quantity when taken, taken so far)
        self._taken: dict[str, dict[tuple[bool, Decimal], tuple[Decimal, Decimal]]] = {}
        self._seen_trade: dict[str, int] = {}  # per pair, the newest trade id looked at

    def next_id(self) -> int:
        return self._ledger.next_id()

    def now(self) -> int:
        return int(self._clock())

    def rules(self, pair: str) -> PairRules | None:
        return self._rules.get(pair)

    def book(self, pair: PairRules) -> Book:
        """The live book less what paper orders took from it (`took`): EXMO's book does not shrink
        for a paper fill, so a level paper orders emptied stays empty until EXMO shows it changed."""
        kept = self._books.get(pair.name)
        if kept is None:
            return Book((), ())
        taken = self._taken.get(pair.name, {})

        def left(buying: bool, levels: tuple[Level, ...]) -> tuple[Level, ...]:
            rest = ((p, q - taken[(buying, p)][1] if (buying, p) in taken else q) for p, q in levels)
            return tuple((p, q) for p, q in rest if q > 0)

        return Book(left(True, kept[1].asks), left(False, kept[1].bids))

    def took(self, pair: PairRules, buying: bool, levels: list[Level]) -> None:
        raw = dict(self._books[pair.name][1].side(buying)) if pair.name in self._books else {}
        taken = self._taken.setdefault(pair.name, {})
        for price, quantity in levels:
            seen, before = taken.get((buying, price), (raw.get(price, Decimal(0)), Decimal(0)))
            taken[(buying, price)] = (seen, before + quantity)

    async def prints(self, pairs: list[str]) -> dict[str, list[tuple[int, Book]]]:
        """EXMO's trades on `pairs` not looked at before, as liquidity a resting order could have been
        filled from (a sale at or below a resting buy's price, a purchase at or above a resting
        sell's): per second they happened in, oldest first. A trade fills only orders placed in an
        earlier second (`cross(placed_by=)`): they were resting when it happened."""
        try:
            found = await self._fetch("trades", {"pair": ",".join(pairs)})
            news: dict[str, list[tuple[int, Book]]] = {}
            for name in pairs:
                rows = [(int(r["trade_id"]), int(r["date"]), Decimal(str(r["price"])),
                         Decimal(str(r["quantity"]))) for r in found.get(name) or []]
                seen = self._seen_trade.get(name, 0)
                self._seen_trade[name] = max([seen, *(r[0] for r in rows)])
                by_second: dict[int, dict[Decimal, Decimal]] = {}
                for trade_id, date, price, quantity in rows:
                    if trade_id > seen and quantity > 0:
                        level = by_second.setdefault(date, {})
                        level[price] = level.get(price, Decimal(0)) + quantity
                news[name] = [(date, Book(tuple(sorted(levels.items())),
                                          tuple(sorted(levels.items(), reverse=True))))
                              for date, levels in sorted(by_second.items())]
            return news
        except (KeyError, ValueError, TypeError, AttributeError, ArithmeticError) as exc:
            raise MarketUnavailable(f"EXMO's trades could not be read for paper trading ({exc!r})") from None

    def _fresh_book(self, name: str, book: Book, now: float) -> None:
        """A new read of the live book: what paper orders took from a level still counts while the
        level shows the same quantity as when they took it (nobody traded it); a changed level is
        fresh liquidity."""
        self._books[name] = (now, book)
        taken = self._taken.get(name, {})
        sides = {True: dict(book.asks), False: dict(book.bids)}
        for (buying, price), (seen, _) in list(taken.items()):
            if sides[buying].get(price) != seen:
                del taken[(buying, price)]

    async def prepare(self, pairs: list[str], fresh_s: float = BOOK_FRESH_S, books: bool = True) -> None:
        """Make the rules and (`books`) the books of `pairs` current (MarketUnavailable if EXMO cannot
        say)."""
        now = time.monotonic()
        try:
            missing = any(p not in self._rules for p in pairs)  # a new listing, or a typo: not often
            if now - self._rules_at > RULES_TTL_S or (missing and now - self._rules_at > RULES_RETRY_S):
                settings = await self._fetch("pair_settings", {})
                self._rules = _rules(settings)
                self._rules_at = now
            stale = [p for p in pairs if books and p in self._rules
                     and now - self._books.get(p, (-fresh_s - 1,))[0] > fresh_s]
            if stale:
                found = await self._fetch("order_book", {"pair": ",".join(stale), "limit": "100"})
                for name in stale:
                    self._fresh_book(name, Book.from_order_book(found.get(name) or {}), now)
        except (ValueError, TypeError, AttributeError, Refusal) as exc:
            raise MarketUnavailable(f"EXMO's live market could not be read for paper trading ({exc});"
                                    " nothing was done, try again") from None


def _rules(settings: Mapping[str, Any]) -> dict[str, PairRules]:
    """Every pair of a `pair_settings` answer that reads; one that does not is left out (logged)."""
    found = {}
    for name, raw in settings.items():
        try:
            found[name] = PairRules.from_settings(name, raw)
        except ValueError as exc:
            log.warning("paper: pair_settings of %s is not usable (%s); it cannot be traded", name, exc)
    return found


class PaperDesk:
    def __init__(self, ledger: PaperLedger, market: LiveMarket) -> None:
        self.ledger, self.market = ledger, market
        self._lock = asyncio.Lock()
        self._listeners: dict[str, set[asyncio.Event]] = {}  # a paper stream's, per account

    def listen(self, account: str) -> asyncio.Event:
        """An event set whenever `account` changes (a paper stream waits on it)."""
        event = asyncio.Event()
        self._listeners.setdefault(account, set()).add(event)
        return event

    def unlisten(self, account: str, event: asyncio.Event) -> None:
        self._listeners.get(account, set()).discard(event)

    async def account(self, name: str) -> Account:
        """The paper account as it stands (started, if this is its first use)."""
        async with self._lock:
            return self._account(name)

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
            after = clone(before) if method in CHANGES else before  # a read changes nothing: no copy
            payload = answer(self.market, after, params)  # ExmoError: nothing changed
            if method in CHANGES:
                await self._commit(account, before, after)
            return payload

    async def close(self) -> None:
        """Close the ledger once no change is being written."""
        async with self._lock:
            self.ledger.close()

    async def watch(self) -> None:
        """Every POLL_S, fill what the live books cross (runs while the daemon does)."""
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self.check_resting()
            except (MarketUnavailable, LedgerUnavailable) as exc:
                log.warning("paper: resting orders not checked this time: %s", exc)
            except Exception:  # a bug must not stop the watch for the rest of the run
                log.exception("paper: checking resting orders failed; trying again in %.0f s", POLL_S)

    async def check_resting(self) -> int:
        """One pass over every resting paper order against fresh books; how many fills."""
        pairs = sorted({o.pair.name for a in self.ledger.accounts.values() for o in a.orders.values()})
        if not pairs:
            return 0
        await self.market.prepare(pairs, fresh_s=0.0)
        prints = await self.market.prints(pairs)
        fills = 0
        async with self._lock:
            for name, before in list(self.ledger.accounts.items()):
                if not before.orders:  # nothing resting: nothing to copy or cross
                    continue
                after = clone(before)
                for pair in {o.pair.name for o in before.orders.values()}:
                    rules = self.market.rules(pair)
                    if rules is None:
                        continue
                    fills += len(orders.cross(self.market, after, rules, self.market.book(rules)))
                    for second, book in prints.get(pair, []):  # EXMO's trades through an order's price
                        fills += len(orders.cross(self.market, after, rules, book, placed_by=second - 1,
                                                  record=False))
                if len(after.trades) != len(before.trades):
                    await self._commit(name, before, after)
        return fills

    def _account(self, name: str) -> Account:
        try:
            self.ledger.ensure_open()
            return self.ledger.account(name, self.market.now())
        except LedgerError as exc:
            raise LedgerUnavailable(str(exc)) from None

    async def _commit(self, name: str, before: Account, after: Account) -> None:
        """On disk before the call is answered; in a worker thread, so the fsync does not hold up the
        daemon's other calls (the lock keeps paper changes one at a time)."""
        writing = asyncio.ensure_future(asyncio.to_thread(self.ledger.commit, name, before, after))
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:  # the write goes on in its thread: wait for it, lock held
            with contextlib.suppress(Exception):
                await writing
            raise
        except LedgerError as exc:
            raise LedgerUnavailable(f"{exc}; the paper order was not placed or changed") from None
        for event in self._listeners.get(name, ()):
            event.set()
