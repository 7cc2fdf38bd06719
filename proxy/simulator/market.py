"""The simulated market: pairs, currencies, fixed reference prices and EXMO number formatting.

Prices never move, so every answer is deterministic. The pair settings mirror the fields of
``pair_settings`` that ccxt reads (exmo-api.md §2.1; ccxt ``fetch_markets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

EIGHT = Decimal("0.00000001")
SPREAD = Decimal("0.0005")  # half the bid/ask spread, as a fraction of the reference price
COMMISSION_PERCENT = Decimal("0.4")  # taker = maker, like ccxt's pair_settings sample


@dataclass(frozen=True)
class Pair:
    """One spot pair and its limits, as ``pair_settings`` reports them."""

    name: str
    reference: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    min_price: Decimal
    max_price: Decimal
    min_amount: Decimal
    max_amount: Decimal
    price_precision: int

    @property
    def base(self) -> str:
        return self.name.split("_")[0]

    @property
    def quote(self) -> str:
        return self.name.split("_")[1]

    @property
    def bid(self) -> Decimal:
        return self.round_price(self.reference * (1 - SPREAD))

    @property
    def ask(self) -> Decimal:
        return self.round_price(self.reference * (1 + SPREAD))

    def round_price(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-self.price_precision), ROUND_HALF_EVEN)


def _pair(name: str, ref: str, qty: tuple[str, str], precision: int) -> Pair:
    d = Decimal
    return Pair(name, d(ref), d(qty[0]), d(qty[1]), d("0.01"), d(ref) * 20,
                d("1"), d("5000000"), precision)


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


def num(value: Decimal) -> str:
    """EXMO sends numbers as plain decimal strings: ``"0"``, ``"60030"``, ``"0.1"``."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def eight(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, ROUND_HALF_EVEN)
