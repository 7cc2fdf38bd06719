"""Answers to the public methods of exmo-api.md §2.1 (no signature; GET or POST).

Shapes follow EXMO's examples and what ccxt's parsers read; numbers are strings like EXMO's.
Each answer is a function of the market's prices (state.Exchange), the parameters and the time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from proxy.exchange import errors
from proxy.exchange import params as p
from proxy.exchange.params import Params
from proxy.simulator import candles, market
from proxy.simulator.market import Pair, num
from proxy.simulator.state import Exchange

PublicAnswer = Callable[[Exchange, Params, int], Any]


def _rows(levels: tuple[tuple[Decimal, Decimal], ...]) -> list[list[str]]:
    return [[num(price), num(qty), num(market.eight(price * qty))] for price, qty in levels]


def _book(ex: Exchange, pair: Pair, depth: int) -> dict[str, Any]:
    book = ex.book(pair.rules, depth)
    ask, bid = _rows(book.asks), _rows(book.bids)
    return {
        "ask_quantity": num(sum((q for _, q in book.asks), Decimal(0))),
        "ask_amount": num(sum((Decimal(r[2]) for r in ask), Decimal(0))),
        "ask_top": num(book.asks[0][0]),
        "bid_quantity": num(sum((q for _, q in book.bids), Decimal(0))),
        "bid_amount": num(sum((Decimal(r[2]) for r in bid), Decimal(0))),
        "bid_top": num(book.bids[0][0]),
        "ask": ask,
        "bid": bid,
    }


def order_book(ex: Exchange, params: Params, now: int) -> dict[str, Any]:
    limit = params.get("limit", "100")
    depth = min(int(limit), 1000, 50) if limit.isdigit() and int(limit) > 0 else 50  # §2.1
    return {pair.name: _book(ex, pair, depth) for pair in market.pairs_named(p.require(params, "pair"))}


def _trades(ex: Exchange, pair: Pair, now: int) -> list[dict[str, Any]]:
    rows = []
    price_now = ex.price(pair)
    for i in range(20):
        side = "buy" if i % 2 == 0 else "sell"
        price = pair.ask_at(price_now) if side == "buy" else pair.bid_at(price_now)
        qty = market.level_quantity(i) / 10
        # the same trades every time (ids and dates fixed, from before the simulator started), at
        # today's prices; what the price moves made comes first (state.Exchange.move)
        rows.append({"trade_id": str(900000 + i), "date": str(ex.started - 7 * (i + 1)), "type": side,
                     "quantity": num(qty), "price": num(price),
                     "amount": num(market.eight(price * qty))})
    return rows


def trades(ex: Exchange, params: Params, now: int) -> dict[str, Any]:
    """The trades the price moves made (newest first), then the usual ones around the price."""
    return {pair.name: (ex.prints.get(pair.name, []) + _trades(ex, pair, now))[:20]
            for pair in market.pairs_named(p.require(params, "pair"))}


def _ticker(ex: Exchange, pair: Pair, now: int) -> dict[str, Any]:
    ref = ex.price(pair)
    vol = Decimal(1000000) / ref
    return {
        "buy_price": num(pair.bid_at(ref)), "sell_price": num(pair.ask_at(ref)), "last_trade": num(ref),
        "high": num(pair.round_price(ref * Decimal("1.02"))),
        "low": num(pair.round_price(ref * Decimal("0.98"))), "avg": num(ref),
        "vol": num(market.eight(vol)), "vol_curr": num(market.eight(vol * ref)), "updated": now,
    }


def ticker(ex: Exchange, params: Params, now: int) -> dict[str, Any]:
    return {pair.name: _ticker(ex, pair, now) for pair in market.PAIRS}


def pair_settings(ex: Exchange, params: Params, now: int) -> dict[str, Any]:
    return {pair.name: pair.rules.settings() for pair in market.PAIRS}


def currency(ex: Exchange, params: Params, now: int) -> list[str]:
    return list(market.CURRENCIES)


def currency_list_extended(ex: Exchange, params: Params, now: int) -> list[dict[str, str]]:
    return [{"name": name, "description": text} for name, text in market.CURRENCIES.items()]


def required_amount(ex: Exchange, params: Params, now: int) -> dict[str, str]:
    pair = market.find(p.require(params, "pair"))
    quantity = p.decimal(params, "quantity")
    if pair is None:
        raise errors.invalid_value("pair")
    ask = pair.ask_at(ex.price(pair))
    amount = market.eight(quantity * ask)
    return {"quantity": num(quantity), "amount": num(amount), "avg_price": num(ask)}


def _provider(cur: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "name": cur, "currency_name": cur, "min": "0.001",
            "max": "0" if kind == "deposit" else "1000", "enabled": True,
            "comment": "Simulated provider", "commission_desc": "0%" if kind == "deposit" else f"0 {cur}",
            "currency_confirmations": 1 if kind == "deposit" else 6}


def crypto_providers(ex: Exchange, params: Params, now: int) -> dict[str, Any]:
    return {cur: [_provider(cur, "deposit"), _provider(cur, "withdraw")] for cur in market.CRYPTO}


PUBLIC: Mapping[str, PublicAnswer] = {
    "trades": trades,
    "order_book": order_book,
    "ticker": ticker,
    "pair_settings": pair_settings,
    "currency": currency,
    "currency/list/extended": currency_list_extended,
    "required_amount": required_amount,
    "candles_history": candles.candles_history,
    "payments/providers/crypto/list": crypto_providers,
}
