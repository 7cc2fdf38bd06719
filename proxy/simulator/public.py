"""Answers to the public methods of exmo-api.md §2.1 (no signature; GET or POST).

Shapes follow EXMO's examples and what ccxt's parsers read; numbers are strings like EXMO's.
Each answer is a pure function of the parameters and the current time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from proxy.simulator import candles, errors, market
from proxy.simulator import params as p
from proxy.simulator.market import Pair, num
from proxy.simulator.params import Params

PublicAnswer = Callable[[Params, int], Any]


def _level_quantity(i: int) -> Decimal:
    return Decimal("0.5") + Decimal(i % 5) / 4


def _side(pair: Pair, top: Decimal, step: Decimal, depth: int) -> list[list[str]]:
    rows = []
    for i in range(depth):
        price = pair.round_price(top + step * i)
        qty = _level_quantity(i)
        rows.append([num(price), num(qty), num(market.eight(price * qty))])
    return rows


def _book(pair: Pair, depth: int) -> dict[str, Any]:
    step = pair.round_price(pair.reference * market.SPREAD) or Decimal(1).scaleb(-pair.price_precision)
    ask, bid = _side(pair, pair.ask, step, depth), _side(pair, pair.bid, -step, depth)
    return {
        "ask_quantity": num(sum((Decimal(r[1]) for r in ask), Decimal(0))),
        "ask_amount": num(sum((Decimal(r[2]) for r in ask), Decimal(0))),
        "ask_top": num(pair.ask),
        "bid_quantity": num(sum((Decimal(r[1]) for r in bid), Decimal(0))),
        "bid_amount": num(sum((Decimal(r[2]) for r in bid), Decimal(0))),
        "bid_top": num(pair.bid),
        "ask": ask,
        "bid": bid,
    }


def order_book(params: Params, now: int) -> dict[str, Any]:
    limit = params.get("limit", "100")
    depth = min(int(limit), 1000, 50) if limit.isdigit() and int(limit) > 0 else 50  # §2.1
    return {pair.name: _book(pair, depth) for pair in market.pairs_named(p.require(params, "pair"))}


def _trades(pair: Pair, now: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(20):
        side = "buy" if i % 2 == 0 else "sell"
        price = pair.ask if side == "buy" else pair.bid
        qty = _level_quantity(i) / 10
        rows.append({"trade_id": str(900000 + i), "date": str(now - 7 * i), "type": side,  # strings, as EXMO
                     "quantity": num(qty), "price": num(price),
                     "amount": num(market.eight(price * qty))})
    return rows


def trades(params: Params, now: int) -> dict[str, Any]:
    return {pair.name: _trades(pair, now) for pair in market.pairs_named(p.require(params, "pair"))}


def _ticker(pair: Pair, now: int) -> dict[str, Any]:
    ref, vol = pair.reference, Decimal(1000000) / pair.reference
    return {
        "buy_price": num(pair.bid), "sell_price": num(pair.ask), "last_trade": num(ref),
        "high": num(pair.round_price(ref * Decimal("1.02"))),
        "low": num(pair.round_price(ref * Decimal("0.98"))), "avg": num(ref),
        "vol": num(market.eight(vol)), "vol_curr": num(market.eight(vol * ref)), "updated": now,
    }


def ticker(params: Params, now: int) -> dict[str, Any]:
    return {pair.name: _ticker(pair, now) for pair in market.PAIRS}


def _settings(pair: Pair) -> dict[str, Any]:
    return {
        "min_quantity": num(pair.min_quantity), "max_quantity": num(pair.max_quantity),
        "min_price": num(pair.min_price), "max_price": num(pair.max_price),
        "max_amount": num(pair.max_amount), "min_amount": num(pair.min_amount),
        "price_precision": pair.price_precision,
        "commission_taker_percent": num(market.COMMISSION_PERCENT),
        "commission_maker_percent": num(market.COMMISSION_PERCENT),
    }


def pair_settings(params: Params, now: int) -> dict[str, Any]:
    return {pair.name: _settings(pair) for pair in market.PAIRS}


def currency(params: Params, now: int) -> list[str]:
    return list(market.CURRENCIES)


def currency_list_extended(params: Params, now: int) -> list[dict[str, str]]:
    return [{"name": name, "description": text} for name, text in market.CURRENCIES.items()]


def required_amount(params: Params, now: int) -> dict[str, str]:
    pair = market.find(p.require(params, "pair"))
    quantity = p.decimal(params, "quantity")
    if pair is None:
        raise errors.invalid_value("pair")
    amount = market.eight(quantity * pair.ask)
    return {"quantity": num(quantity), "amount": num(amount), "avg_price": num(pair.ask)}


def _provider(cur: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "name": cur, "currency_name": cur, "min": "0.001",
            "max": "0" if kind == "deposit" else "1000", "enabled": True,
            "comment": "Simulated provider", "commission_desc": "0%" if kind == "deposit" else f"0 {cur}",
            "currency_confirmations": 1 if kind == "deposit" else 6}


def crypto_providers(params: Params, now: int) -> dict[str, Any]:
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
