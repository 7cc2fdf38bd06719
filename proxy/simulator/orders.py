"""Spot order methods that change state: ``order_create``, ``order_cancel`` and the stop-market pair.

Model (deliberately simple): the book never moves. A limit buy at or above the reference ask
(a sell at or below the bid) fills at once at that price as taker; otherwise it rests with its
funds reserved. Market orders fill at the ask/bid. The taker commission is taken from what the
account receives. Validation texts: exmo-api.md §4.3.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

from proxy.simulator import errors, market
from proxy.simulator import params as p
from proxy.simulator.market import Pair
from proxy.simulator.params import Params
from proxy.simulator.state import Account, Exchange, Order, Trade

LIMIT_TYPES = ("buy", "sell")
MARKET_TYPES = ("market_buy", "market_sell", "market_buy_total", "market_sell_total")  # §2.2


def _pair(params: Params) -> Pair:
    pair = market.find(p.require(params, "pair"))
    if pair is None:
        raise errors.invalid_value("pair")
    return pair


def _client_id(params: Params) -> int:
    """Optional positive integer (exmo-api.md §2.2, added 2020-10-16); 0 when absent."""
    raw = params.get("client_id", "")
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        raise errors.invalid_value("client_id")
    return int(raw)


def _check_quantity(pair: Pair, quantity: Decimal) -> None:
    if quantity < pair.min_quantity:
        raise errors.quantity_below_min()
    if quantity > pair.max_quantity:
        raise errors.invalid_value("quantity")  # [UNCONFIRMED] text for "above maximum"


def _check_price(pair: Pair, price: Decimal) -> None:
    if price < pair.min_price:
        raise errors.price_below_min()
    if price > pair.max_price:
        raise errors.price_above_max()
    if price != pair.round_price(price):
        raise errors.too_many_decimals(pair.price_precision, pair.name)


def _fill(ex: Exchange, acct: Account, order: Order) -> None:
    """Execute ``order`` completely at ``order.price`` as taker."""
    pair, amount = order.pair, order.amount
    side = "buy" if "buy" in order.type else "sell"
    paid, got = (pair.quote, pair.base) if side == "buy" else (pair.base, pair.quote)
    acct.wallet.debit(paid, amount if side == "buy" else order.quantity)
    received = order.quantity if side == "buy" else amount
    fee = market.eight(received * market.COMMISSION_PERCENT / 100)
    acct.wallet.credit(got, received - fee)
    acct.trades.append(Trade(ex.next_id(), ex.now(), side, order.order_id, order.client_id,
                             pair, order.quantity, order.price, amount, fee, got))


def _base_quantity(pair: Pair, kind: str, quantity: Decimal) -> Decimal:
    """Market ``*_total`` orders give the quote amount; convert it to base at the fill price."""
    if kind == "market_buy_total":
        return (quantity / pair.ask).quantize(market.EIGHT, ROUND_DOWN)
    if kind == "market_sell_total":
        return (quantity / pair.bid).quantize(market.EIGHT, ROUND_UP)
    return quantity


def _market(ex: Exchange, acct: Account, order: Order) -> None:
    if order.quantity > order.pair.max_amount:
        raise errors.invalid_value("quantity")  # keeps the Decimal arithmetic bounded
    base = _base_quantity(order.pair, order.type, order.quantity)
    _check_quantity(order.pair, base)
    price = order.pair.ask if "buy" in order.type else order.pair.bid
    _fill(ex, acct, Order(order.order_id, order.client_id, order.created, order.type,
                          order.pair, base, price))


def _limit(ex: Exchange, acct: Account, order: Order) -> None:
    _check_quantity(order.pair, order.quantity)
    _check_price(order.pair, order.price)
    pair = order.pair
    if order.type == "buy" and order.price >= pair.ask:
        _fill(ex, acct, Order(order.order_id, order.client_id, order.created, "buy", pair,
                              order.quantity, pair.ask))
    elif order.type == "sell" and order.price <= pair.bid:
        _fill(ex, acct, Order(order.order_id, order.client_id, order.created, "sell", pair,
                              order.quantity, pair.bid))
    else:
        acct.wallet.reserve(*order.held)
        acct.orders[order.order_id] = order


def order_create(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """``{"result":true,"error":"","order_id":…,"client_id":…}`` (exmo-api.md §4.2)."""
    pair, quantity = _pair(params), p.decimal(params, "quantity")
    kind = p.require(params, "type")
    if kind not in LIMIT_TYPES + MARKET_TYPES:
        raise errors.invalid_value("type")
    client_id = _client_id(params)
    # Market orders may omit the price or send price=0 (ccxt#2132, exmo-api.md §2.2).
    price = p.decimal(params, "price", None if kind in LIMIT_TYPES else "0")
    order = Order(ex.next_id(), client_id, ex.now(), kind, pair, quantity, price)
    (_limit if kind in LIMIT_TYPES else _market)(ex, acct, order)
    return {"result": True, "error": "", "order_id": order.order_id, "client_id": client_id}


def order_cancel(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """Cancel a resting order and release its reserve; else 50173 (exmo-api.md §4.3)."""
    raw = p.require(params, "order_id")
    order = acct.orders.pop(int(raw), None) if raw.isascii() and raw.isdigit() else None
    if order is None:
        raise errors.order_not_found(raw)
    acct.wallet.release(*order.held)
    acct.cancelled.append((ex.now(), order))
    return {"result": True, "error": ""}


def stop_market_order_create(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """Record an untriggered stop-market order; the fixed prices never trigger it (§4.2 shape)."""
    pair, quantity = _pair(params), p.decimal(params, "quantity")
    trigger = p.decimal(params, "trigger_price")
    side = p.require(params, "type")
    if side not in LIMIT_TYPES:
        raise errors.invalid_value("type")
    client_id = _client_id(params)
    _check_quantity(pair, quantity)
    _check_price(pair, trigger)
    order = Order(ex.next_id(), client_id, ex.now(), f"stop_market_{side}", pair, quantity, trigger)
    acct.stops[order.order_id] = order
    return {"client_id": client_id, "parent_order_id": order.order_id,
            "parent_order_id_str": str(order.order_id)}


def stop_market_order_cancel(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    raw = p.require(params, "parent_order_id")
    order = acct.stops.pop(int(raw), None) if raw.isascii() and raw.isdigit() else None
    if order is None:
        raise errors.order_not_found(raw)
    return {"result": True, "error": ""}
