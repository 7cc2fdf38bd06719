"""The simulated exchange's mutable state: accounts, wallets, orders, trades, wallet operations.

A plain typed object per app (no globals, no HTTP). Money is ``Decimal`` throughout; the
private-method modules (``spot.py``, ``funds.py``, ``margin.py``) read and change it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from proxy.simulator import errors, market
from proxy.simulator.market import Pair

FIRST_ID = 36000000001  # EXMO's ids are 11-digit numbers (ccxt#19116 shows 36785559245)
FIRST_UID = 100001


class Wallet:
    """Free and reserved balances of one account (``user_info`` ``balances`` / ``reserved``)."""

    def __init__(self, start: dict[str, Decimal]) -> None:
        self.free = dict(start)
        self.reserved = {cur: Decimal(0) for cur in start}

    def debit(self, cur: str, amount: Decimal) -> None:
        if self.free.get(cur, Decimal(0)) < amount:
            raise errors.insufficient_funds()  # §4.3 50052
        self.free[cur] -= amount

    def credit(self, cur: str, amount: Decimal) -> None:
        self.free[cur] = self.free.get(cur, Decimal(0)) + amount

    def reserve(self, cur: str, amount: Decimal) -> None:
        self.debit(cur, amount)
        self.reserved[cur] = self.reserved.get(cur, Decimal(0)) + amount

    def release(self, cur: str, amount: Decimal) -> None:
        self.reserved[cur] -= amount
        self.credit(cur, amount)


@dataclass
class Order:
    """A resting limit order (``type`` buy/sell) or a stop-market order (``stop_market_*``)."""

    order_id: int
    client_id: int
    created: int
    type: str
    pair: Pair
    quantity: Decimal
    price: Decimal  # the limit price, or the trigger price of a stop order

    @property
    def amount(self) -> Decimal:
        return market.eight(self.quantity * self.price)

    @property
    def held(self) -> tuple[str, Decimal]:
        """What a resting limit order keeps reserved."""
        if self.type == "buy":
            return self.pair.quote, self.amount
        return self.pair.base, self.quantity


@dataclass(frozen=True)
class Trade:
    trade_id: int
    date: int
    type: str
    order_id: int
    client_id: int
    pair: Pair
    quantity: Decimal
    price: Decimal
    amount: Decimal
    commission: Decimal
    commission_currency: str


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
class Account:
    uid: int
    wallet: Wallet
    orders: dict[int, Order] = field(default_factory=dict)  # resting limit orders
    stops: dict[int, Order] = field(default_factory=dict)  # untriggered stop-market orders
    cancelled: list[tuple[int, Order]] = field(default_factory=list)  # (cancel time, order)
    trades: list[Trade] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)


class Exchange:
    """All accounts plus what is shared between them (ids, EX-CODEs, the clock)."""

    def __init__(self, keys: Iterable[str], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._ids = itertools.count(FIRST_ID)
        self.accounts = {
            key: Account(FIRST_UID + n, Wallet(market.STARTING_BALANCES))
            for n, key in enumerate(keys)
        }
        self.excodes: dict[str, Excode] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def now(self) -> int:
        return int(self._clock())
