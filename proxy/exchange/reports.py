"""Read-only spot account methods: ``user_info``, open/cancelled orders and trades.

Shapes follow exmo-api.md §4.2 and the samples in ccxt's parsers: ids and numbers as strings
in order lists, ``user_cancelled_orders`` a bare JSON array (§4.1), ``{}`` when nothing is open.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from proxy.exchange import errors
from proxy.exchange import params as p
from proxy.exchange.ledger import Account, Order, Trade
from proxy.exchange.money import num
from proxy.exchange.orders import Venue
from proxy.exchange.params import Params
from proxy.exchange.rules import PairRules


def pairs_named(venue: Venue, csv: str) -> list[PairRules]:
    """Known pairs from a comma list; unknown ones are silently absent (exmo-api.md §2.1)."""
    found = (venue.rules(part.strip()) for part in csv.split(","))
    return [pair for pair in found if pair is not None]


def user_info(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    wallet = acct.wallet
    return {
        "uid": acct.uid,
        "server_date": venue.now(),
        "balances": {cur: num(value) for cur, value in wallet.free.items()},
        "reserved": {cur: num(value) for cur, value in wallet.reserved.items()},
    }


def _limit_row(order: Order) -> dict[str, str]:
    return {"order_id": str(order.order_id), "client_id": str(order.client_id),
            "created": str(order.created), "type": order.type, "pair": order.pair.name,
            "quantity": num(order.quantity), "price": num(order.price), "amount": num(order.amount)}


def _stop_row(order: Order) -> dict[str, str]:
    return {"parent_order_id": str(order.order_id), "client_id": str(order.client_id),
            "created": str(order.created), "type": order.type, "pair": order.pair.name,
            "quantity": num(order.quantity), "trigger_price": num(order.price),
            "amount": num(order.amount)}


def user_open_orders(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    """``{PAIR: [order, …]}``, optionally only for ``pair`` (added 2022-02-28, §2.2)."""
    wanted = {pair.name for pair in pairs_named(venue, params.get("pair", ""))}
    rows = [_limit_row(o) for o in acct.orders.values()] + [_stop_row(o) for o in acct.stops.values()]
    result: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if not params.get("pair") or row["pair"] in wanted:
            result.setdefault(row["pair"], []).append(row)
    return result


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {"trade_id": trade.trade_id, "client_id": trade.client_id, "date": trade.date,
            "type": trade.type, "pair": trade.pair.name, "quantity": num(trade.quantity),
            "price": num(trade.price), "amount": num(trade.amount), "order_id": trade.order_id,
            "parent_order_id": 0, "exec_type": trade.exec_type,
            "commission_amount": num(trade.commission),
            "commission_currency": trade.commission_currency,
            "commission_percent": num(trade.commission_percent)}


def user_trades(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    """Newest first per requested pair; ``limit`` ≤ 100 in v1.1 (exmo-api.md §2.2)."""
    pairs = pairs_named(venue, p.require(params, "pair"))
    offset, limit = p.page(params)
    newest = list(reversed(acct.trades))
    return {pair.name: [_trade_row(t) for t in newest if t.pair.name == pair.name][offset:offset + limit]
            for pair in pairs}


def user_cancelled_orders(venue: Venue, acct: Account, params: Params) -> list[dict[str, Any]]:
    offset, limit = p.page(params)
    newest = list(reversed(acct.cancelled))[offset:offset + limit]
    return [{"date": when, **_limit_row(order)} for when, order in newest]


def order_trades(venue: Venue, acct: Account, params: Params) -> dict[str, Any]:
    """The trades of one order; 50304 when it has none (exmo-api.md §4.3)."""
    raw = p.require(params, "order_id")
    trades = [t for t in acct.trades if str(t.order_id) == raw]
    if not trades:
        raise errors.order_has_no_trades(raw)
    first = trades[0]
    base = sum((t.quantity for t in trades), start=Decimal(0))
    quote = sum((t.amount for t in trades), start=Decimal(0))
    got, gave = (first.pair.base, first.pair.quote) if first.type == "buy" else (
        first.pair.quote, first.pair.base)
    got_amount, gave_amount = (base, quote) if first.type == "buy" else (quote, base)
    return {"type": first.type, "in_currency": got, "in_amount": num(got_amount),
            "out_currency": gave, "out_amount": num(gave_amount),
            "trades": [_trade_row(t) for t in trades]}
