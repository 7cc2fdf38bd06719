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
