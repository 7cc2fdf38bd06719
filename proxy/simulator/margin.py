"""Margin methods (exmo-api.md §2.3): pair data, empty account views, and refusals.

Simulated accounts hold no margin balance, so every margin trading method answers the margin
error shape ``{"error":{"code":"140434","msg":…}}`` (§4.1, §4.3) and the read methods return
plausible empty structures. Field names follow the samples in ccxt's exmo parsers ([INF]).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from proxy.exchange import errors
from proxy.exchange.params import Params
from proxy.simulator import market
from proxy.simulator.market import Pair, num
from proxy.simulator.state import Account, Exchange

MarginAnswer = Callable[[Exchange, Account, Params], Any]

TRADING = (
    "margin/user/order/create", "margin/user/order/update", "margin/user/order/cancel",
    "margin/user/position/close", "margin/user/position/margin_add",
    "margin/user/position/margin_remove",
)

EMPTY_READS: Mapping[str, Callable[[], Any]] = {
    "margin/funding/list": lambda: {"list": []},
    "margin/user/info": lambda: {"balances": {}, "positions": []},
    "margin/user/order/list": lambda: {"orders": []},
    "margin/user/order/history": lambda: {"items": []},
    "margin/user/order/trades": lambda: {"trades": []},
    "margin/user/order/max_quantity": lambda: {"max_quantity": "0"},
    "margin/user/position/list": lambda: {"positions": []},
    "margin/user/position/margin_remove_info": lambda: {"max_quantity": "0"},
    "margin/user/position/margin_add_info": lambda: {"max_quantity": "0"},
    "margin/user/wallet/list": lambda: {"wallets": []},
    "margin/user/wallet/history": lambda: {"items": []},
    "margin/user/trade/list": lambda: {"trades": []},
    "margin/trades": lambda: {"trades": {}},
    "margin/liquidation/feed": lambda: {"items": []},
}


def _pair_row(pair: Pair, now_ns: str) -> dict[str, Any]:
    return {
        "name": pair.name, "buy_price": num(pair.bid), "sell_price": num(pair.ask),
        "last_trade_price": num(pair.reference), "ticker_updated": now_ns, "is_fair_price": True,
        "max_price_precision": pair.price_precision,
        "min_order_quantity": num(pair.min_quantity), "max_order_quantity": num(pair.max_quantity),
        "min_order_price": num(pair.min_price), "max_order_price": num(pair.max_price),
        "max_position_quantity": num(pair.max_quantity),
        "trade_taker_fee": "0.05", "trade_maker_fee": "0", "liquidation_fee": "2",
        "max_leverage": "3", "default_leverage": "3", "liquidation_level": "10",
        "margin_call_level": "15", "position": 1, "updated": now_ns,
    }


def pair_list(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    now_ns = str(ex.now() * 1_000_000_000)
    return {"pairs": [_pair_row(pair, now_ns) for pair in market.PAIRS]}


def currency_list(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    return {"currencies": [{"name": name, "description": text}
                           for name, text in market.CURRENCIES.items()]}


def settings(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    return {"settings": {"enabled": False, "default_leverage": "3"}}  # [INF] shape


def refuse(ex: Exchange, acct: Account, params: Params) -> Any:
    raise errors.margin_balance()


def _empty(make: Callable[[], Any]) -> MarginAnswer:
    return lambda ex, acct, params: make()


MARGIN: Mapping[str, MarginAnswer] = {
    "margin/pair/list": pair_list,
    "margin/currency/list": currency_list,
    "margin/settings": settings,
    **{name: _empty(make) for name, make in EMPTY_READS.items()},
    **{name: refuse for name in TRADING},
}
