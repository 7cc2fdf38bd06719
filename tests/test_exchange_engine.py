"""The shared exchange engine (proxy/exchange): book walking, resting orders, fills, fees, funds.

Pure functions on a venue; here a venue with a fixed book of our choosing (`Venue` is the engine's
own protocol: the simulator and paper mode each give one). Random order sequences check that no
balance goes negative and that what is reserved is exactly what the open orders hold.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.exchange import errors
from proxy.exchange.book import Book
from proxy.exchange.ledger import Account, Wallet
from proxy.exchange.orders import cross, order_cancel, order_create
from proxy.exchange.rules import PairRules

D = Decimal
RULES = PairRules("BTC_USDT", D("0.001"), D("100"), D("1"), D("1000000"), D("1"), D("5000000"), 2,
                  D("0.4"), D("0.2"))
BOOK = Book(asks=((D(100), D(1)), (D(101), D(2)), (D(103), D(5))),
            bids=((D(99), D(1)), (D(98), D(2)), (D(95), D(5))))


class FixedVenue:
    def __init__(self, book: Book = BOOK) -> None:
        self.current = book
        self._ids = itertools.count(1)
        self.taken: list[tuple[bool, list[tuple[Decimal, Decimal]]]] = []

    def next_id(self) -> int:
        return next(self._ids)

    def now(self) -> int:
        return 1_700_000_000

    def rules(self, pair: str) -> PairRules | None:
        return RULES if pair == RULES.name else None

    def book(self, pair: PairRules) -> Book:
        return self.current

    def took(self, pair: PairRules, buying: bool, levels: list[tuple[Decimal, Decimal]]) -> None:
        self.taken.append((buying, levels))


def _account(usdt: str = "10000", btc: str = "10") -> Account:
    return Account(1, Wallet({"USDT": D(usdt), "BTC": D(btc)}))


def _order(venue: FixedVenue, acct: Account, **params: str) -> dict[str, object]:
    return order_create(venue, acct, {"pair": "BTC_USDT", **params})


def test_a_market_buy_walks_the_asks_as_taker() -> None:
    venue, acct = FixedVenue(), _account()
    _order(venue, acct, quantity="2.5", type="market_buy")
    assert [(t.price, t.quantity, t.exec_type) for t in acct.trades] == [
        (D(100), D(1), "taker"), (D(101), D("1.5"), "taker")]
    assert acct.wallet.free["USDT"] == D(10000) - D(100) - D("151.5")
    # the taker fee (0.4 %) comes out of what is received
    assert acct.wallet.free["BTC"] == D(10) + D("2.5") - D("0.004") - D("0.006")


def test_a_market_buy_total_spends_at_most_its_amount() -> None:
    venue, acct = FixedVenue(), _account()
    _order(venue, acct, quantity="201", type="market_buy_total")
    spent = D(10000) - acct.wallet.free["USDT"]
    assert D(200) < spent <= D(201)
    assert [t.price for t in acct.trades] == [D(100), D(101)]


def test_a_market_sell_total_raises_its_amount_from_the_bids() -> None:
    venue, acct = FixedVenue(), _account()
    _order(venue, acct, quantity="148", type="market_sell_total")
    assert sum((t.amount for t in acct.trades), D(0)) <= D(148)
    assert [t.price for t in acct.trades] == [D(99), D(98)]


def test_a_limit_buy_takes_what_crosses_and_rests_the_rest() -> None:
    venue, acct = FixedVenue(), _account()
    answer = _order(venue, acct, quantity="4", price="101", type="buy")
    assert [(t.price, t.quantity) for t in acct.trades] == [(D(100), D(1)), (D(101), D(2))]
    order = acct.orders[int(str(answer["order_id"]))]
    assert (order.quantity, order.reserved) == (D(1), D(101))
    assert acct.wallet.reserved["USDT"] == D(101)


def test_a_resting_order_fills_as_maker_partly_then_wholly() -> None:
    venue, acct = FixedVenue(), _account()
    answer = _order(venue, acct, quantity="3", price="90", type="buy")
    order_id = int(str(answer["order_id"]))
    assert acct.wallet.reserved["USDT"] == D(270) and not acct.trades
    partly = cross(venue, acct, RULES, Book(asks=((D(89), D(1)),), bids=()))
    assert [(t.price, t.quantity, t.exec_type, t.commission_percent) for t in partly] == [
        (D(90), D(1), "maker", D("0.2"))]
    assert (acct.orders[order_id].quantity, acct.wallet.reserved["USDT"]) == (D(2), D(180))
    cross(venue, acct, RULES, Book(asks=((D(85), D(10)),), bids=()))
    assert order_id not in acct.orders
    assert acct.wallet.reserved["USDT"] == 0
    assert acct.wallet.free["USDT"] == D(10000) - D(270)
    assert acct.wallet.free["BTC"] == D(10) + D(3) - D("0.006")  # 0.2 % of 3 BTC, maker


def test_a_cross_takes_each_level_once_and_says_what_it_took() -> None:
    """Two resting buys crossed by one level of 1.5: the older takes 1, the younger the 0.5 left;
    the venue is told both takes (paper mode keeps them off the live book until it changes)."""
    venue, acct = FixedVenue(), _account()
    first = _order(venue, acct, quantity="1", price="90", type="buy")
    second = _order(venue, acct, quantity="1", price="90", type="buy")
    venue.taken.clear()
    fills = cross(venue, acct, RULES, Book(asks=((D(88), D("1.5")),), bids=()))
    assert [(t.order_id, t.quantity) for t in fills] == [(first["order_id"], D(1)),
                                                         (second["order_id"], D("0.5"))]
    assert venue.taken == [(True, [(D(88), D(1))]), (True, [(D(88), D("0.5"))])]


def test_partial_fills_never_leave_a_negative_reserve() -> None:
    """Fills too small for the eighth decimal of their cost: what stays reserved is always exactly
    what the rest of the order costs, so the last fill and a cancel come out even."""
    rules = PairRules("DOGE_USD", D("0.00000001"), D("100"), D("0.1"), D("100"), D(0), D("5000000"), 1,
                      D(0), D(0))

    class Cheap(FixedVenue):
        def rules(self, pair: str) -> PairRules | None:
            return rules

    venue, acct = Cheap(Book((), ())), Account(1, Wallet({"USD": D("0.00000006")}))
    answer = order_create(venue, acct, {"pair": "DOGE_USD", "quantity": "0.00000013", "price": "0.5",
                                        "type": "buy"})
    for _ in range(4):
        cross(venue, acct, rules, Book(asks=((D("0.4"), D("0.00000003")),), bids=()))
        assert acct.wallet.reserved["USD"] >= 0 and acct.wallet.free["USD"] >= 0
    order_cancel(venue, acct, {"order_id": str(answer["order_id"])})
    assert acct.wallet.reserved["USD"] == 0 and acct.wallet.free["USD"] >= 0


def test_a_book_that_does_not_reach_an_order_leaves_it() -> None:
    venue, acct = FixedVenue(), _account()
    _order(venue, acct, quantity="1", price="110", type="sell")
    assert cross(venue, acct, RULES, BOOK) == []
    assert acct.wallet.reserved["BTC"] == D(1)


def test_refused_orders_change_nothing() -> None:
    venue, acct = FixedVenue(), _account(usdt="150")
    before = (dict(acct.wallet.free), dict(acct.wallet.reserved))
    with pytest.raises(errors.ExmoError, match="50052"):
        _order(venue, acct, quantity="2", type="market_buy")  # 100 + 101 > 150
    with pytest.raises(errors.ExmoError, match="50052"):
        _order(venue, acct, quantity="2", price="99", type="buy")  # 198 to reserve
    with pytest.raises(errors.ExmoError, match="50277"):
        _order(venue, acct, quantity="0.0001", price="99", type="buy")
    with pytest.raises(errors.ExmoError, match="50381"):
        _order(venue, acct, quantity="1", price="99.001", type="buy")
    assert (acct.wallet.free, acct.wallet.reserved) == before and not acct.trades


def test_a_cancel_gives_the_reserve_back() -> None:
    venue, acct = FixedVenue(), _account()
    answer = _order(venue, acct, quantity="1.5", price="97", type="buy")
    order_cancel(venue, acct, {"order_id": str(answer["order_id"])})
    assert acct.wallet.free["USDT"] == D(10000) and acct.wallet.reserved["USDT"] == 0
    with pytest.raises(errors.ExmoError, match="50173"):
        order_cancel(venue, acct, {"order_id": str(answer["order_id"])})


ORDERS = st.tuples(st.sampled_from(["buy", "sell", "market_buy", "market_sell", "market_buy_total",
                                    "market_sell_total", "cancel", "cross"]),
                   st.decimals(D("0.001"), D("8"), places=3), st.integers(90, 110))


@settings(max_examples=200, deadline=None)
@given(st.lists(ORDERS, max_size=25))
def test_no_sequence_of_orders_breaks_the_books(steps: list[tuple[str, Decimal, int]]) -> None:
    venue, acct = FixedVenue(), _account(usdt="2000", btc="5")
    for kind, quantity, price in steps:
        try:
            if kind == "cancel" and acct.orders:
                order_cancel(venue, acct, {"order_id": str(min(acct.orders))})
            elif kind == "cross":
                shifted = D(price - 100)
                venue.current = Book(tuple((p + shifted, q) for p, q in BOOK.asks),
                                     tuple((p + shifted, q) for p, q in BOOK.bids))
                cross(venue, acct, RULES, venue.current)
            elif kind not in ("cancel", "cross"):
                amount = quantity * 100 if kind.endswith("_total") else quantity
                _order(venue, acct, quantity=str(amount), price=str(price), type=kind)
        except errors.ExmoError:
            pass
        wallet = acct.wallet
        assert all(v >= 0 for v in [*wallet.free.values(), *wallet.reserved.values()])
        for cur in ("USDT", "BTC"):
            held = sum((o.reserved for o in acct.orders.values() if o.held_currency == cur), D(0))
            assert wallet.reserved.get(cur, D(0)) == held
