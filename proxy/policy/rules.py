"""What may be signed: method tables and the pure checks on method, account and client.

Rules, in the order they are applied (the first that refuses names itself in the 403):
client may use the account → money out needs the account's `allow_withdrawals` and, for a client,
the method listed explicitly → a read-only account may only read → the account's `allow` list →
the client's `allow` list. Nothing here does I/O (exmo-api.md §2, SPEC §6).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # config imports audit, which imports this module's tables
    from proxy.config import Account
    from proxy.scopes import Client

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


def check_client(client: Client | None, account: Account, method: str) -> None:
    if client is None:
        return
    if account.name not in client.accounts:
        raise PolicyDenied("client_account", f"client {client.name!r} may not use account {account.name!r}"
                                             f" (clients.{client.name}.accounts)")
    if method in MONEY_OUT and (client.allow is None or method not in client.allow):
        raise PolicyDenied("client_withdrawals", f"client {client.name!r} may not call {method}: money-out"
                                                 f" methods must be listed in clients.{client.name}.allow")
    if client.allow is not None and method not in client.allow:
        raise PolicyDenied("client_method_not_allowed",
                           f"client {client.name!r} may not call {method} (clients.{client.name}.allow)")


def check(account: Account, method: str, client: Client | None = None) -> None:
    """Raise PolicyDenied unless `client` (None: no tokens configured) may call `method` on `account`."""
    rules = account.policy
    where = f"accounts.{account.name}"
    check_client(client, account, method)
    if method in MONEY_OUT and not rules.allow_withdrawals:
        raise PolicyDenied("withdrawals_locked", f"{method} moves money out and is locked; set"
                                                 f" {where}.allow_withdrawals: true to permit it")
    if rules.read_only and method not in READ_METHODS:
        raise PolicyDenied("read_only", f"account {account.name!r} is read_only; {method} is not a read")
    if rules.allow is not None and method not in rules.allow:
        raise PolicyDenied("method_not_allowed", f"{method} is not in {where}.allow; add it to permit it")
