"""Pre-trade checks on an order's parameters, before it is signed: pairs, sizes, destinations.

Per account (all optional): `allowed_pairs`, `max_order_quantity` and `max_order_notional` per
pair, and `withdraw_addresses` per currency. A limit that cannot be evaluated is a refusal, not a
pass: a market order given by base quantity has no price to compute its notional, and a `*_total`
order gives the quote amount, not the base quantity (exmo-api.md §2.2 order types).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from proxy.config import Account
from proxy.inbound import Params
from proxy.policy import ORDER_CREATE, PolicyDenied
from proxy.scopes import AccountPolicy

TOTAL_TYPES = frozenset({"market_buy_total", "market_sell_total"})


def _number(params: Mapping[str, str], name: str) -> Decimal | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PolicyDenied("order_unreadable", f"{name}={text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise PolicyDenied("order_unreadable", f"{name}={text!r} is not a non-negative number")
    return value


def _sizes(method: str, params: Mapping[str, str]) -> tuple[Decimal | None, Decimal | None]:
    """(base quantity, quote notional) of an order; None where the order does not say."""
    quantity = _number(params, "quantity")
    if params.get("type", "") in TOTAL_TYPES:
        return None, quantity
    price = _number(params, "trigger_price" if method == "stop_market_order_create" else "price")
    notional = quantity * price if quantity is not None and price else None
    return quantity, notional


def _limit(rules: Mapping[str, Decimal], pair: str, value: Decimal | None, what: str, where: str) -> None:
    limit = rules.get(pair)
    if limit is None:
        return
    if value is None:
        raise PolicyDenied(f"max_order_{what}", f"{where}.max_order_{what} is set for {pair}, but this order"
                                                f" does not state its {what}; send a limit order")
    if value > limit:
        raise PolicyDenied(f"max_order_{what}", f"order {what} {value} exceeds {where}.max_order_{what}"
                                                f".{pair} = {limit}")


def check_order(account: Account, method: str, params: Mapping[str, str]) -> None:
    rules: AccountPolicy = account.policy
    where = f"accounts.{account.name}"
    pair = params.get("pair", "")
    if rules.allowed_pairs is not None and pair not in rules.allowed_pairs:
        raise PolicyDenied("pair_not_allowed", f"pair {pair!r} is not in {where}.allowed_pairs")
    if not (rules.max_order_quantity or rules.max_order_notional):
        return
    quantity, notional = _sizes(method, params)
    _limit(rules.max_order_quantity, pair, quantity, "quantity", where)
    _limit(rules.max_order_notional, pair, notional, "notional", where)


def check_withdrawal(account: Account, params: Mapping[str, str]) -> None:
    allowed = account.policy.withdraw_addresses
    if allowed is None:
        return
    currency = params.get("currency", "").upper()
    address = params.get("address", "")
    if address not in allowed.get(currency, frozenset()):
        raise PolicyDenied("withdraw_address", f"address {address!r} is not in accounts.{account.name}"
                                               f".withdraw_addresses.{currency or '?'}")


def check(account: Account, method: str, params: Params) -> None:
    """Raise PolicyDenied if the parameters break one of the account's pre-trade rules."""
    values = dict(params)
    if method in ORDER_CREATE:
        check_order(account, method, values)
    elif method == "withdraw_crypt":
        check_withdrawal(account, values)
