"""The rules on method, account and client: the pure checks before anything is signed.

Rules, in the order they are applied (the first that refuses names itself in the 403):
client may use the account → money out needs the account's `allow_withdrawals` and, for a client,
the method listed explicitly → a read-only account may only read → the account's `allow` list →
the client's `allow` list. Nothing here does I/O (exmo-api.md §2, SPEC §6).
"""

from __future__ import annotations

from proxy.config.accounts import Account
from proxy.config.clients import Client
from proxy.exmo.methods import MONEY_OUT, READ_METHODS
from proxy.exmo.refusals import Refusal


class PolicyDenied(Refusal):
    """The request is refused by a rule (403); the rule's name is the slug."""

    status = 403

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message, slug=rule)

    @property
    def rule(self) -> str:
        return self.slug


def _check_account(client: Client, account: Account) -> None:
    if account.name not in client.accounts:
        raise PolicyDenied("client_account", f"client {client.name!r} may not use account {account.name!r}"
                                             f" (clients.{client.name}.accounts)")


def check_client(client: Client | None, account: Account, method: str) -> None:
    if client is None:
        return
    _check_account(client, account)
    if method in MONEY_OUT and (client.allow is None or method not in client.allow):
        raise PolicyDenied("client_withdrawals", f"client {client.name!r} may not call {method}: money-out"
                                                 f" methods must be listed in clients.{client.name}.allow")
    if client.allow is not None and method not in client.allow:
        raise PolicyDenied("client_method_not_allowed",
                           f"client {client.name!r} may not call {method} (clients.{client.name}.allow)")


def check_stream(account: Account, client: Client | None) -> None:
    """Raise PolicyDenied unless `client` may open a private WebSocket stream of `account`. Streams are
    reads (orders, trades, balances), so the account's method rules do not apply; the halt switch
    does not cut them either."""
    if client is None:
        return
    _check_account(client, account)
    if not client.streams:
        raise PolicyDenied("client_streams", f"client {client.name!r} may not open private streams"
                                             f" (clients.{client.name}.streams: false)")


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
