"""The stop-market pair, which only the simulator takes (``order_create`` and ``order_cancel`` are the
shared engine's: proxy/exchange/orders.py). A stop order is recorded and listed; the simulator's
market does not trigger it. Validation texts: exmo-api.md §4.3.
"""

from __future__ import annotations

from typing import Any

from proxy.exchange import errors
from proxy.exchange import params as p
from proxy.exchange.ledger import Order
from proxy.exchange.orders import LIMIT_TYPES, check_price, check_quantity, client_id_of, pair_of
from proxy.exchange.params import Params
from proxy.simulator.state import Account, Exchange


def stop_market_order_create(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """Record an untriggered stop-market order (§4.2 shape)."""
    pair, quantity = pair_of(ex, params), p.decimal(params, "quantity")
    trigger = p.decimal(params, "trigger_price")
    side = p.require(params, "type")
    if side not in LIMIT_TYPES:
        raise errors.invalid_value("type")
    client_id = client_id_of(params)
    check_quantity(pair, quantity)
    check_price(pair, trigger)
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
