"""What may be signed: method tables and the pure `check` (exmo-api.md §2, SPEC §6).

Money-out methods are locked unless the account opts in; an account `allow` list narrows what it
may call. Nothing here does I/O.
"""

from __future__ import annotations

import re

from proxy.config import Account

# exmo-api.md §2.1: answered without a signature, by GET or POST.
PUBLIC_METHODS = frozenset({
    "trades", "order_book", "ticker", "pair_settings", "currency", "currency/list/extended",
    "required_amount", "candles_history", "payments/providers/crypto/list",
})
# exmo-api.md §2.2 and §2.3: the signed methods known today (EXMO may add more; unknown ones are
# still forwarded, and EXMO answers 40015 for a name it does not know).
PRIVATE_METHODS = frozenset({
    "user_info", "order_create", "order_cancel", "stop_market_order_create", "stop_market_order_cancel",
    "user_open_orders", "user_trades", "user_cancelled_orders", "order_trades", "deposit_address",
    "withdraw_crypt", "withdraw_get_txid", "excode_create", "excode_load", "code_check", "wallet_history",
    "wallet_operations",
    "margin/user/order/create", "margin/user/order/update", "margin/user/order/cancel",
    "margin/user/position/close", "margin/user/position/margin_add", "margin/user/position/margin_remove",
    "margin/currency/list", "margin/pair/list", "margin/settings", "margin/funding/list", "margin/user/info",
    "margin/user/order/list", "margin/user/order/history", "margin/user/order/trades",
    "margin/user/order/max_quantity", "margin/user/position/list", "margin/user/position/margin_remove_info",
    "margin/user/position/margin_add_info", "margin/user/wallet/list", "margin/user/wallet/history",
    "margin/user/trade/list", "margin/trades", "margin/liquidation/feed",
})
# exmo-api.md §2.4: value leaves the account (EX-CODE is a bearer voucher).
MONEY_OUT = frozenset({"withdraw_crypt", "excode_create"})

_METHOD = re.compile(r"^[a-z0-9_]{1,64}(?:/[a-z0-9_]{1,64}){0,5}$")


class PolicyDenied(Exception):
    """The request is refused by a rule; `rule` is the machine-readable slug."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def is_valid_method(method: str) -> bool:
    return bool(_METHOD.match(method))


def is_public(method: str) -> bool:
    return method in PUBLIC_METHODS


def is_known_private(method: str) -> bool:
    return method in PRIVATE_METHODS


def check(account: Account, method: str) -> None:
    """Raise PolicyDenied unless `account` may call private `method`."""
    if method in MONEY_OUT and not account.allow_withdrawals:
        raise PolicyDenied(
            "withdrawals_locked",
            f"{method} moves money out and is locked; set accounts.{account.name}.allow_withdrawals: true"
            " in the config to permit it",
        )
    if account.allow is not None and method not in account.allow:
        raise PolicyDenied(
            "method_not_allowed",
            f"{method} is not in accounts.{account.name}.allow; add it there to permit it",
        )
