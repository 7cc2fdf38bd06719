"""One account on the exchange: its wallet, resting orders, cancelled orders and trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from proxy.exchange import errors
from proxy.exchange.money import eight
from proxy.exchange.rules import PairRules


class Wallet:
    """Free and reserved balances of one account (``user_info`` ``balances`` / ``reserved``)."""

    def __init__(self, start: dict[str, Decimal]) -> None:
        self.free = dict(start)
        self.reserved = {cur: Decimal(0) for cur in start}

    def has(self, cur: str, amount: Decimal) -> bool:
        return self.free.get(cur, Decimal(0)) >= amount

    def debit(self, cur: str, amount: Decimal) -> None:
        if not self.has(cur, amount):
            raise errors.insufficient_funds()  # exmo-api.md §4.3 50052
        self.free[cur] -= amount

    def credit(self, cur: str, amount: Decimal) -> None:
        self.free[cur] = self.free.get(cur, Decimal(0)) + amount
        self.reserved.setdefault(cur, Decimal(0))  # user_info lists the same currencies in both

    def reserve(self, cur: str, amount: Decimal) -> None:
        self.debit(cur, amount)
        self.reserved[cur] = self.reserved.get(cur, Decimal(0)) + amount

    def release(self, cur: str, amount: Decimal) -> None:
        self.reserved[cur] -= amount
        self.credit(cur, amount)

    def spend_reserved(self, cur: str, amount: Decimal) -> None:
        """Pay from what an order kept reserved (its fill)."""
        self.reserved[cur] -= amount


@dataclass
class Order:
    """A resting limit order (``type`` buy/sell) or a stop-market order (``stop_market_*``).
    `quantity` is what is still open; `reserved` what the order still keeps reserved."""

    order_id: int
    client_id: int
    created: int
    type: str
    pair: PairRules
    quantity: Decimal
    price: Decimal  # the limit price, or the trigger price of a stop order
    reserved: Decimal = Decimal(0)

    @property
    def buying(self) -> bool:
        return "buy" in self.type

    @property
    def amount(self) -> Decimal:
        return eight(self.quantity * self.price)

    @property
    def held_currency(self) -> str:
        return self.pair.quote if self.buying else self.pair.base


@dataclass(frozen=True)
class Trade:
    trade_id: int
    date: int
    type: str  # buy or sell
    order_id: int
    client_id: int
    pair: PairRules
    quantity: Decimal
    price: Decimal
    amount: Decimal
    commission: Decimal
    commission_currency: str
    commission_percent: Decimal
    exec_type: str  # taker or maker


@dataclass
class Account:
    uid: int
    wallet: Wallet
    orders: dict[int, Order] = field(default_factory=dict)  # resting limit orders
    stops: dict[int, Order] = field(default_factory=dict)  # untriggered stop-market orders
    cancelled: list[tuple[int, Order]] = field(default_factory=list)  # (cancel time, order)
    trades: list[Trade] = field(default_factory=list)
