"""EXMO's method tables: public, read, trade, money-out, and what stays allowed while halted.

This module imports nothing: config, policy, audit and metrics all classify methods by these tables,
and none of them may pull the others in through it.
"""

from __future__ import annotations

import functools
import re

# exmo-api.md §2.1: answered without a signature, by GET or POST.
PUBLIC_METHODS = frozenset({
    "trades", "order_book", "ticker", "pair_settings", "currency", "currency/list/extended",
    "required_amount", "candles_history", "payments/providers/crypto/list",
})
# exmo-api.md §2.2 / §2.3 "READ": change nothing in the account.
READ_METHODS = frozenset({
    "user_info", "user_open_orders", "user_trades", "user_cancelled_orders", "order_trades",
    "deposit_address", "withdraw_get_txid", "code_check", "wallet_history", "wallet_operations",
    "margin/currency/list", "margin/pair/list", "margin/settings", "margin/funding/list", "margin/user/info",
    "margin/user/order/list", "margin/user/order/history", "margin/user/order/trades",
    "margin/user/order/max_quantity", "margin/user/position/list", "margin/user/position/margin_remove_info",
    "margin/user/position/margin_add_info", "margin/user/wallet/list", "margin/user/wallet/history",
    "margin/user/trade/list", "margin/trades", "margin/liquidation/feed",
})
# exmo-api.md §2.2 / §2.3 "TRADE" and value in/out.
ORDER_CREATE = frozenset({"order_create", "stop_market_order_create", "margin/user/order/create"})
TRADE_METHODS = ORDER_CREATE | frozenset({
    "order_cancel", "stop_market_order_cancel", "margin/user/order/update", "margin/user/order/cancel",
    "margin/user/position/close", "margin/user/position/margin_add", "margin/user/position/margin_remove",
})
# exmo-api.md §2.4: value leaves the account (EX-CODE is a bearer voucher).
MONEY_OUT = frozenset({"withdraw_crypt", "excode_create"})
PRIVATE_METHODS = READ_METHODS | TRADE_METHODS | MONEY_OUT | frozenset({"excode_load"})
# While halted only these pass: reads, and what reduces risk. An allowlist, so a method EXMO adds
# later is stopped too. The panic button must never block a cancel or a close.
UNWIND_METHODS = frozenset({
    "order_cancel", "stop_market_order_cancel", "margin/user/order/cancel", "margin/user/position/close",
})
ALLOWED_WHILE_HALTED = READ_METHODS | UNWIND_METHODS

_METHOD = re.compile(r"^[a-z0-9_]{1,64}(?:/[a-z0-9_]{1,64}){0,5}$")


def is_valid_method(method: str) -> bool:
    return bool(_METHOD.match(method))


def is_public(method: str) -> bool:
    return method in PUBLIC_METHODS


def is_known_private(method: str) -> bool:
    return method in PRIVATE_METHODS


@functools.lru_cache(maxsize=512)  # method names are validated words; a few dozen exist
def method_class(method: str | None) -> str:
    """The label metrics and timings use: public, money_out, trade, read, other (none: no method)."""
    if method is None:
        return "none"
    if method in PUBLIC_METHODS:
        return "public"
    if method in MONEY_OUT:
        return "money_out"
    if method in TRADE_METHODS:
        return "trade"
    return "read" if method in READ_METHODS else "other"
