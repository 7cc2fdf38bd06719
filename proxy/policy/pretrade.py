"""Pre-trade checks on an order's parameters, before it is signed: pairs, sizes, destinations.

Per account (all optional): `allowed_pairs`, `max_order_quantity` and `max_order_notional` per
pair, and `withdraw_addresses` per currency. A limit that cannot be evaluated is a refusal, not a
pass:
- only a limit order states the price it will trade at (spot `buy`/`sell`, margin `limit_*` and
  `stop_limit_*`); market and stop orders trade at whatever the market is, whatever `price` or
  `trigger_price` says, so their notional is unknown — except `*_total` orders, which state the
  quote amount (and so not the base quantity) (exmo-api.md §2.2, §2.3 order types);
- an order update names no pair, and a method this daemon does not know cannot be read at all, so
  with order rules set both are refused;
- a pair must be written exactly as EXMO names it (`BTC_USDT`): `btc_usdt` must not dodge a limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from proxy.config.accounts import Account, AccountPolicy, Destination
from proxy.exmo.methods import MONEY_OUT, ORDER_CREATE, is_known_private
from proxy.exmo.signing import Params
from proxy.policy.rules import PolicyDenied

TOTAL_TYPES = frozenset({"market_buy_total", "market_sell_total"})
PRICED_TYPES = frozenset({"buy", "sell", "limit_buy", "limit_sell", "stop_limit_buy", "stop_limit_sell"})
CANONICAL_PAIR = re.compile(r"^[A-Z0-9]+_[A-Z0-9]+$")


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
    kind = params.get("type", "")
    if kind in TOTAL_TYPES:
        return None, quantity
    if method == "stop_market_order_create" or kind not in PRICED_TYPES:
        return quantity, None
    price = _number(params, "price")
    try:
        return quantity, quantity * price if quantity is not None and price else None
    except ArithmeticError:  # 1e999999 x 1e999999
        raise PolicyDenied("order_unreadable", "quantity x price is out of range") from None


def _limit(rules: Mapping[str, Decimal], pair: str, value: Decimal | None, what: str, where: str) -> None:
    limit = rules.get(pair)
    if limit is None:
        return
    if value is None:
        raise PolicyDenied(f"max_order_{what}", f"{where}.max_order_{what} is set for {pair}, but this order"
                                                f" does not state a {what} that can be checked; send a"
                                                " limit order")
    if value > limit:
        raise PolicyDenied(f"max_order_{what}", f"order {what} {value} exceeds {where}.max_order_{what}"
                                                f".{pair} = {limit}")


def _has_order_rules(rules: AccountPolicy) -> bool:
    return bool(rules.allowed_pairs is not None or rules.max_order_quantity or rules.max_order_notional)


def check_order(account: Account, method: str, params: Mapping[str, str]) -> None:
    rules: AccountPolicy = account.policy
    where = f"accounts.{account.name}"
    pair = params.get("pair", "")
    if _has_order_rules(rules) and not CANONICAL_PAIR.match(pair):
        raise PolicyDenied("pair_not_allowed", f"pair {pair!r} is not written as EXMO names pairs (BTC_USDT)")
    if rules.allowed_pairs is not None and pair not in rules.allowed_pairs:
        raise PolicyDenied("pair_not_allowed", f"pair {pair!r} is not in {where}.allowed_pairs")
    if not (rules.max_order_quantity or rules.max_order_notional):
        return
    quantity, notional = _sizes(method, params)
    _limit(rules.max_order_quantity, pair, quantity, "quantity", where)
    _limit(rules.max_order_notional, pair, notional, "notional", where)


def _matches(entry: Destination, address: str, invoice: str, transport: str) -> bool:
    if entry.address != address or (entry.invoice or "") != invoice:
        return False
    return entry.transport is None or entry.transport.lower() == transport.lower()


def check_withdrawal(account: Account, method: str, params: Mapping[str, str]) -> None:
    allowed = account.policy.withdraw_addresses
    if allowed is None:
        return
    where = f"accounts.{account.name}.withdraw_addresses"
    if method != "withdraw_crypt":  # an EX-CODE is a bearer voucher: no address can pin where it goes
        raise PolicyDenied("withdraw_address", f"{method} cannot be pinned to an address; it is refused"
                                               f" while {where} is set")
    currency = params.get("currency", "").upper()
    address, invoice = params.get("address", ""), params.get("invoice", "")
    transport = params.get("transport", "")
    if not any(_matches(e, address, invoice, transport) for e in allowed.get(currency, ())):
        memo = f" with invoice {invoice!r}" if invoice else ""
        raise PolicyDenied("withdraw_address",
                           f"address {address!r}{memo} is not in {where}.{currency or '?'}")


def check(account: Account, method: str, params: Params) -> None:
    """Raise PolicyDenied if the parameters break one of the account's pre-trade rules."""
    values = dict(params)
    rules = account.policy
    if method in ORDER_CREATE:
        check_order(account, method, values)
    elif method in MONEY_OUT:
        check_withdrawal(account, method, values)
    elif _has_order_rules(rules) and (method == "margin/user/order/update" or not is_known_private(method)):
        raise PolicyDenied("order_rules", f"{method} cannot be checked against accounts.{account.name}'s"
                                          " order rules (allowed_pairs / max_order_*), so it is refused")
