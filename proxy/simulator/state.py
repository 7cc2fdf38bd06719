"""The simulated exchange's mutable state: accounts, prices, EX-CODEs, ids and the clock.

A plain typed object per app (no globals, no HTTP). Money is ``Decimal`` throughout. `Exchange` is
the venue of the shared engine (proxy/exchange: orders, fills, reports), on the simulator's own
market: prices that move only when told to (`move`), and the synthetic book around them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from proxy.exchange import ledger, orders
from proxy.exchange.book import Book
from proxy.exchange.ledger import Trade, Wallet
from proxy.exchange.rules import PairRules
from proxy.simulator import market

FIRST_ID = 36000000001  # EXMO's ids are 11-digit numbers (ccxt#19116 shows 36785559245)
FIRST_UID = 100001


@dataclass(frozen=True)
class Operation:
    """A wallet operation (withdrawal or EX-CODE), for the wallet history methods."""

    task_id: int
    created: int
    type: str  # "withdraw" or "deposit"
    currency: str
    amount: Decimal
    provider: str
    account: str
    txid: str


@dataclass
class Excode:
    code: str
    task_id: int
    currency: str
    amount: Decimal
    loaded: bool = False


@dataclass
class Account(ledger.Account):
    """The engine's account (exchange/ledger.py) and its wallet operations (funds.py)."""

    operations: list[Operation] = field(default_factory=list)


class Exchange:
    """All accounts plus what is shared between them (prices, ids, EX-CODEs, the clock)."""

    def __init__(self, keys: Iterable[str], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._ids = itertools.count(FIRST_ID)
        self.accounts = {
            key: Account(FIRST_UID + n, Wallet(market.STARTING_BALANCES))
            for n, key in enumerate(keys)
        }
        self.excodes: dict[str, Excode] = {}
        self.prices: dict[str, Decimal] = {pair.name: pair.reference for pair in market.PAIRS}
        self.prints: dict[str, list[dict[str, str]]] = {}  # trades the moves made, newest first
        self.started = self.now()

    def next_id(self) -> int:
        return next(self._ids)

    def now(self) -> int:
        return int(self._clock())

    def rules(self, pair: str) -> PairRules | None:
        found = market.find(pair)
        return found.rules if found is not None else None

    def book(self, pair: PairRules, depth: int = 50) -> Book:
        return market.find(pair.name).book(self.prices[pair.name], depth)  # type: ignore[union-attr]

    def took(self, pair: PairRules, buying: bool, levels: list[tuple[Decimal, Decimal]]) -> None:
        """The simulator's book stands for a deep market: the ladder is the same after any order."""

    def price(self, pair: market.Pair) -> Decimal:
        return self.prices[pair.name]

    def move(self, pair: market.Pair, price: Decimal) -> dict[str, list[Trade]]:
        """The market of `pair` moves to `price`: resting orders it crosses fill (engine: orders.cross);
        the fills, by the API key of their account."""
        before = self.prices[pair.name]
        self.prices[pair.name] = pair.round_price(price)
        # the move is a trade at the new price (public `trades` shows it first)
        self.prints.setdefault(pair.name, []).insert(0, {
            "trade_id": str(self.next_id()), "date": str(self.now()),
            "type": "sell" if price < before else "buy", "quantity": "0.5",
            "price": market.num(self.prices[pair.name]),
            "amount": market.num(market.eight(self.prices[pair.name] / 2))})
        del self.prints[pair.name][20:]
        book = self.book(pair.rules)
        fills = {key: orders.cross(self, account, pair.rules, book) for key, account in self.accounts.items()}
        return {key: trades for key, trades in fills.items() if trades}
