"""The simulated market: pairs, currencies, starting prices, and the synthetic order book.

Each pair starts at its reference price; the simulator's prices move only when a test says so
(`POST /_sim/market`, state.Exchange.move), so every answer is deterministic. The book around a
price is a fixed ladder of levels. The pair settings mirror the fields of ``pair_settings`` that
ccxt reads (exmo-api.md §2.1; ccxt ``fetch_markets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from proxy.exchange.book import Book
from proxy.exchange.money import EIGHT, eight, num
from proxy.exchange.rules import PairRules

__all__ = ["EIGHT", "eight", "num"]  # re-exported: the simulator's modules take them from here

SPREAD = Decimal("0.0005")  # half the bid/ask spread, as a fraction of the reference price
COMMISSION_PERCENT = Decimal("0.4")  # taker = maker, like ccxt's pair_settings sample


@dataclass(frozen=True)
class Pair(PairRules):
    """One spot pair: its rules, as ``pair_settings`` reports them, and the price it starts at."""

    reference: Decimal = Decimal(0)

    @property
    def bid(self) -> Decimal:
        return self.bid_at(self.reference)

    @property
    def ask(self) -> Decimal:
        return self.ask_at(self.reference)

    def bid_at(self, price: Decimal) -> Decimal:
        return self.round_price(price * (1 - SPREAD))

    def ask_at(self, price: Decimal) -> Decimal:
        return self.round_price(price * (1 + SPREAD))

    @property
    def rules(self) -> PairRules:
        return self

    def book(self, price: Decimal, depth: int = 50) -> Book:
        """The ladder around `price`: from the ask up and the bid down, one spread-step apart."""
        step = self.round_price(price * SPREAD) or Decimal(1).scaleb(-self.price_precision)
        ask, bid = self.ask_at(price), self.bid_at(price)
        asks = tuple((self.round_price(ask + step * i), level_quantity(i)) for i in range(depth))
        bids = tuple((self.round_price(bid - step * i), level_quantity(i)) for i in range(depth)
                     if bid - step * i > 0)
        return Book(asks, bids)


def level_quantity(i: int) -> Decimal:
    return Decimal("0.5") + Decimal(i % 5) / 4


def _pair(name: str, ref: str, qty: tuple[str, str], precision: int) -> Pair:
    d = Decimal
    return Pair(name, d(qty[0]), d(qty[1]), d("0.01"), d(ref) * 20, d("1"), d("5000000"), precision,
                COMMISSION_PERCENT, COMMISSION_PERCENT, d(ref))


PAIRS: tuple[Pair, ...] = (
    _pair("BTC_USDT", "60000", ("0.00001", "1000"), 2),
    _pair("ETH_USDT", "3000", ("0.0001", "5000"), 2),
    _pair("LTC_USDT", "80", ("0.01", "10000"), 4),
    _pair("BTC_USD", "60000", ("0.00001", "1000"), 2),
    _pair("BTC_USDC", "60000", ("0.00001", "1000"), 2),
    _pair("ETH_USDC", "3000", ("0.0001", "5000"), 2),
    _pair("LTC_USDC", "80", ("0.01", "10000"), 4),
)
_BY_NAME = {pair.name: pair for pair in PAIRS}

CURRENCIES: dict[str, str] = {  # name → description, for currency/list/extended
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "LTC": "Litecoin",
    "USDT": "Tether",
    "USDC": "USD Coin",
    "USD": "US Dollar",
}
CRYPTO = ("BTC", "ETH", "LTC", "USDT", "USDC")

STARTING_BALANCES: dict[str, Decimal] = {
    "USDT": Decimal(100000), "USD": Decimal(100000), "USDC": Decimal(100000),
    "BTC": Decimal(10), "ETH": Decimal(100), "LTC": Decimal(1000),
}


def find(name: str) -> Pair | None:
    return _BY_NAME.get(name)


def pairs_named(csv: str) -> list[Pair]:
    """Known pairs from a comma list; unknown ones are silently absent (exmo-api.md §2.1)."""
    found = (find(part.strip()) for part in csv.split(","))
    return [pair for pair in found if pair is not None]


