"""Spot orders on a venue: ``order_create``, ``order_cancel``, and resting orders filled when the
market crosses them (`cross`).

A venue gives each pair's rules (EXMO's ``pair_settings``), its order book, ids and the time: the
simulator's synthetic market, or EXMO's live one in paper mode. A market order walks the book as
taker, one trade per level it takes (the ``*_total`` types spend or raise an amount of the quote
currency); what the book cannot fill is not executed [INF: EXMO's behaviour for a book too thin was
not seen]. A limit order takes at once, as taker and at the book's prices, what the book offers at
its price or better, and rests with its funds reserved for the rest. A resting order fills as maker,
at its own price, when the book crosses it — partly, when less is offered there than it holds. Fees
are EXMO's taker or maker percent, taken from what the account receives. Funds are checked before
anything changes: a refused order leaves the account as it was. Texts: exmo-api.md §4.3.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from proxy.exchange import errors
from proxy.exchange import params as p
from proxy.exchange.book import Book, Level, crossing
from proxy.exchange.ledger import Account, Order, Trade
from proxy.exchange.money import EIGHT, eight
from proxy.exchange.params import Params
from proxy.exchange.rules import PairRules

LIMIT_TYPES = ("buy", "sell")
MARKET_TYPES = ("market_buy", "market_sell", "market_buy_total", "market_sell_total")  # §2.2


class Venue(Protocol):
    def next_id(self) -> int: ...

    def now(self) -> int: ...

    def rules(self, pair: str) -> PairRules | None: ...

    def book(self, pair: PairRules) -> Book: ...

    def took(self, pair: PairRules, buying: bool, levels: list[Level]) -> None:
        """What an order took from the book (paper mode: the live book does not shrink by itself)."""


def pair_of(venue: Venue, params: Params) -> PairRules:
    rules = venue.rules(p.require(params, "pair"))
    if rules is None:
        raise errors.invalid_value("pair")
    return rules


def client_id_of(params: Params) -> int:
    """Optional positive integer (exmo-api.md §2.2, added 2020-10-16); 0 when absent."""
    raw = params.get("client_id", "")
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        raise errors.invalid_value("client_id")
    return int(raw)


def check_quantity(pair: PairRules, quantity: Decimal) -> None:
    if quantity < pair.min_quantity:
        raise errors.quantity_below_min()
    if quantity > pair.max_quantity:
        raise errors.invalid_value("quantity")  # [UNCONFIRMED] text for "above maximum"


def check_price(pair: PairRules, price: Decimal) -> None:
    if price < pair.min_price:
        raise errors.price_below_min()
    if price > pair.max_price:
        raise errors.price_above_max()
    if price != pair.round_price(price):
        raise errors.too_many_decimals(pair.price_precision, pair.name)


def _take(levels: list[Level], base: Decimal | None, quote: Decimal | None) -> list[Level]:
    """The (price, quantity) taken from `levels`, best first, for `base` of the base currency or
    (the ``*_total`` types) `quote` of the quote currency."""
    taken: list[Level] = []
    left = base if base is not None else quote
    assert left is not None
    for price, offered in levels:
        if base is not None:
            quantity = min(offered, left)
            left -= quantity
        else:
            quantity = min(offered, (left / price).quantize(EIGHT, ROUND_DOWN))
            left -= eight(quantity * price)
        if quantity > 0:
            taken.append((price, quantity))
        if left <= 0 or quantity < offered:
            break
    return taken


def _cost(taken: list[Level]) -> Decimal:
    return sum((eight(price * quantity) for price, quantity in taken), Decimal(0))


def _trade(venue: Venue, acct: Account, order: Order, price: Decimal, quantity: Decimal,
           maker: bool) -> Trade:
    """Book one fill whose payment left the account already (free or reserved): what it buys or
    raises lands in the wallet, less the fee."""
    pair, buying = order.pair, order.buying
    amount = eight(price * quantity)
    received, currency = (quantity, pair.base) if buying else (amount, pair.quote)
    percent = pair.maker_percent if maker else pair.taker_percent
    fee = eight(received * percent / 100)
    acct.wallet.credit(currency, received - fee)
    trade = Trade(venue.next_id(), venue.now(), "buy" if buying else "sell", order.order_id,
                  order.client_id, pair, quantity, price, amount, fee, currency, percent,
                  "maker" if maker else "taker")
    acct.trades.append(trade)
    return trade


def _take_now(venue: Venue, acct: Account, order: Order, taken: list[Level]) -> None:
    for price, quantity in taken:
        paid = eight(price * quantity) if order.buying else quantity
        acct.wallet.debit(order.held_currency, paid)
        _trade(venue, acct, order, price, quantity, maker=False)
    if taken:
        venue.took(order.pair, order.buying, taken)


def _market(venue: Venue, acct: Account, order: Order) -> None:
    pair, buying, kind = order.pair, order.buying, order.type
    total = kind.endswith("_total")  # the quantity is then an amount of the quote currency
    if order.quantity <= 0 or order.quantity > (pair.max_amount if total else pair.max_quantity):
        raise errors.invalid_value("quantity")  # [UNCONFIRMED] text; keeps the arithmetic bounded
    levels = crossing(venue.book(pair).side(buying), buying, None)
    taken = _take(levels, None if total else order.quantity, order.quantity if total else None)
    check_quantity(pair, sum((q for _, q in taken), Decimal(0)))
    needed = _cost(taken) if buying else sum((q for _, q in taken), Decimal(0))
    if not acct.wallet.has(order.held_currency, needed):
        raise errors.insufficient_funds()
    _take_now(venue, acct, order, taken)


def _limit(venue: Venue, acct: Account, order: Order) -> None:
    pair, buying = order.pair, order.buying
    check_quantity(pair, order.quantity)
    check_price(pair, order.price)
    taken = _take(crossing(venue.book(pair).side(buying), buying, order.price), order.quantity, None)
    rest = order.quantity - sum((q for _, q in taken), Decimal(0))
    held = eight(rest * order.price) if buying else rest
    needed = (_cost(taken) if buying else order.quantity - rest) + held
    if not acct.wallet.has(order.held_currency, needed):
        raise errors.insufficient_funds()
    _take_now(venue, acct, order, taken)
    if rest > 0:
        order.quantity, order.reserved = rest, held
        acct.wallet.reserve(order.held_currency, held)
        acct.orders[order.order_id] = order


def order_create(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    """``{"result":true,"error":"","order_id":…,"client_id":…}`` (exmo-api.md §4.2)."""
    pair, quantity = pair_of(venue, params), p.decimal(params, "quantity")
    kind = p.require(params, "type")
    if kind not in LIMIT_TYPES + MARKET_TYPES:
        raise errors.invalid_value("type")
    client_id = client_id_of(params)
    # Market orders may omit the price or send price=0 (ccxt#2132, exmo-api.md §2.2).
    price = p.decimal(params, "price", None if kind in LIMIT_TYPES else "0")
    order = Order(venue.next_id(), client_id, venue.now(), kind, pair, quantity, price)
    (_limit if kind in LIMIT_TYPES else _market)(venue, acct, order)
    return {"result": True, "error": "", "order_id": order.order_id, "client_id": client_id}


def order_cancel(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    """Cancel a resting order and release its reserve; else 50173 (exmo-api.md §4.3)."""
    raw = p.require(params, "order_id")
    order = acct.orders.pop(int(raw), None) if raw.isascii() and raw.isdigit() else None
    if order is None:
        raise errors.order_not_found(raw)
    acct.wallet.release(order.held_currency, order.reserved)
    order.reserved = Decimal(0)
    acct.cancelled.append((venue.now(), order))
    return {"result": True, "error": ""}


def cross(venue: Venue, acct: Account, pair: PairRules, book: Book, placed_by: int | None = None,
          record: bool = True) -> list[Trade]:
    """Fill the account's resting orders on `pair` that `book` crosses, oldest first, as maker at
    their own price, each from the levels at its price or better, best first, as far as they go (what
    an older order took in this pass is gone); the fills, in order. What was taken is told to the
    venue (`took`) if `record`. `placed_by`: only orders placed by then (a trade print fills only the
    orders that were resting when it happened)."""
    fills: list[Trade] = []
    left = {True: dict(book.asks), False: dict(book.bids)}  # what each level still offers in this pass
    for order in sorted((o for o in acct.orders.values() if o.pair.name == pair.name
                         and (placed_by is None or o.created <= placed_by)), key=lambda o: o.order_id):
        buying = order.buying
        reach = crossing(book.side(buying), buying, order.price)
        levels = [(price, left[buying][price]) for price, _ in reach if left[buying][price] > 0]
        taken = _take(levels, order.quantity, None)
        quantity = sum((q for _, q in taken), Decimal(0))
        if quantity <= 0:
            continue
        for price, q in taken:
            left[buying][price] -= q
        if record:
            venue.took(pair, buying, taken)
        remaining = order.quantity - quantity
        # paid so that what stays reserved is exactly what the rest of the order will cost
        paid = order.reserved - (eight(remaining * order.price) if buying else remaining)
        acct.wallet.spend_reserved(order.held_currency, paid)
        order.reserved -= paid
        order.quantity = remaining
        fills.append(_trade(venue, acct, order, order.price, quantity, maker=True))
        if remaining == 0:
            del acct.orders[order.order_id]
    return fills
