"""Policy and pre-trade rules as pure functions (proxy/policy.py, proxy/pretrade.py)."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from proxy.config.accounts import Account, AccountPolicy, Destination
from proxy.config.clients import Client
from proxy.exmo import methods
from proxy.policy import pretrade
from proxy.policy import rules as policy
from proxy.policy.rules import PolicyDenied
from proxy.vault.secret import Secret

KEY = "K-" + "1" * 40


def account(**rules: Any) -> Account:
    return Account("main", KEY, Secret("S-" + "2" * 40), AccountPolicy(**rules))


LIMITS = {
    "allowed_pairs": frozenset({"BTC_USDT"}),
    "max_order_quantity": MappingProxyType({"BTC_USDT": Decimal("0.01")}),
    "max_order_notional": MappingProxyType({"BTC_USDT": Decimal("500")}),
}


def form(**params: str) -> tuple[tuple[str, str], ...]:
    return tuple(params.items())


@pytest.mark.parametrize(
    ("method", "params", "rule"),
    [
        pytest.param("order_create", form(pair="BTC_USDT", quantity="0.02", price="100", type="buy"),
                     "max_order_quantity", id="quantity"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="0.01", price="60000", type="sell"),
                     "max_order_notional", id="notional"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="0.005", price="1", type="market_buy"),
                     "max_order_notional", id="market-order-price-is-ignored-by-exmo"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="100", type="market_buy_total"),
                     "max_order_quantity", id="total-has-no-base-quantity"),
        pytest.param("stop_market_order_create",
                     form(pair="BTC_USDT", quantity="0.005", trigger_price="1", type="buy"),
                     "max_order_notional", id="stop-trigger-is-not-a-price"),
        pytest.param("order_create", form(pair="btc_usdt", quantity="0.001", price="1", type="buy"),
                     "pair_not_allowed", id="lower-case-pair"),
        pytest.param("order_create", form(pair=" BTC_USDT", quantity="0.001", price="1", type="buy"),
                     "pair_not_allowed", id="padded-pair"),
        pytest.param("order_create", form(pair="ETH_USDT", quantity="0.001", price="1", type="buy"),
                     "pair_not_allowed", id="other-pair"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="1e999999", price="1e999999", type="buy"),
                     "order_unreadable", id="overflow"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="NaN", price="1", type="buy"),
                     "order_unreadable", id="nan"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="0x10", price="1", type="buy"),
                     "order_unreadable", id="hex"),
        pytest.param("margin/user/order/update", form(order_id="1", quantity="500"), "order_rules",
                     id="margin-update"),
        pytest.param("order_create_v2", form(pair="BTC_USDT"), "order_rules", id="unknown-method"),
    ],
)
def test_orders_breaking_a_rule_are_refused(method: str, params: tuple[tuple[str, str], ...],
                                            rule: str) -> None:
    """Every way an order could dodge a limit is refused, naming the rule."""
    with pytest.raises(PolicyDenied) as info:
        pretrade.check(account(**LIMITS), method, params)
    assert info.value.rule == rule


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param("order_create", form(pair="BTC_USDT", quantity="0.01", price="20000", type="buy"),
                     id="limit-within"),
        pytest.param("order_create", form(pair="BTC_USDT", quantity="1e-2", price="5e4", type="sell"),
                     id="exponents"),
        pytest.param("order_cancel", form(order_id="1"), id="cancel"),
        pytest.param("user_info", form(), id="read"),
    ],
)
def test_orders_within_the_rules_pass(method: str, params: tuple[tuple[str, str], ...]) -> None:
    """Orders inside every limit, and calls that are not orders, pass."""
    pretrade.check(account(**LIMITS), method, params)


def test_total_orders_are_checked_by_their_quote_amount() -> None:
    """market_buy_total states the quote amount: that is its notional."""
    notional_only = {"max_order_notional": MappingProxyType({"BTC_USDT": Decimal("500")})}
    pretrade.check(account(**notional_only), "order_create", form(pair="BTC_USDT", quantity="400",
                                                                  type="market_buy_total"))
    with pytest.raises(PolicyDenied, match="max_order_notional"):
        pretrade.check(account(**notional_only), "order_create", form(pair="BTC_USDT", quantity="600",
                                                                      type="market_buy_total"))


DESTINATIONS = MappingProxyType({
    "BTC": (Destination("bc1qgood"),),
    "XRP": (Destination("rExchange", invoice="12345"),),
    "USDT": (Destination("TAddr", transport="TRC20"),),
})


@pytest.mark.parametrize(
    ("method", "params", "allowed"),
    [
        pytest.param("withdraw_crypt", form(currency="BTC", address="bc1qgood", amount="1"), True,
                     id="listed"),
        pytest.param("withdraw_crypt", form(currency="btc", address="bc1qgood", amount="1"), True,
                     id="currency-case"),
        pytest.param("withdraw_crypt", form(currency="BTC", address="bc1qevil", amount="1"), False,
                     id="other-address"),
        pytest.param("withdraw_crypt", form(currency="BTC", address="bc1qgood", invoice="9", amount="1"),
                     False, id="memo-not-listed"),
        pytest.param("withdraw_crypt", form(currency="XRP", address="rExchange", invoice="12345"), True,
                     id="memo-listed"),
        pytest.param("withdraw_crypt", form(currency="XRP", address="rExchange", invoice="666"), False,
                     id="wrong-memo"),
        pytest.param("withdraw_crypt", form(currency="XRP", address="rExchange"), False, id="memo-missing"),
        pytest.param("withdraw_crypt", form(currency="USDT", address="TAddr", transport="trc20"), True,
                     id="network-listed"),
        pytest.param("withdraw_crypt", form(currency="USDT", address="TAddr", transport="ERC20"), False,
                     id="other-network"),
        pytest.param("withdraw_crypt", form(currency="ETH", address="bc1qgood"), False, id="other-currency"),
        pytest.param("excode_create", form(currency="BTC", amount="1"), False, id="bearer-voucher"),
    ],
)
def test_withdrawal_destinations(method: str, params: tuple[tuple[str, str], ...], allowed: bool) -> None:
    """With withdraw_addresses set, money goes only to a listed address, memo and network."""
    acct = account(allow_withdrawals=True, withdraw_addresses=DESTINATIONS)
    if allowed:
        pretrade.check(acct, method, params)
    else:
        with pytest.raises(PolicyDenied, match="withdraw_addresses") as info:
            pretrade.check(acct, method, params)
        assert info.value.rule == "withdraw_address"


@pytest.mark.parametrize(
    ("rules", "client", "method", "rule"),
    [
        pytest.param({}, None, "withdraw_crypt", "withdrawals_locked", id="money-out-locked"),
        pytest.param({"allow_withdrawals": True}, Client("c", "0" * 64, frozenset({"main"})),
                     "withdraw_crypt", "client_withdrawals", id="client-must-list-money-out"),
        pytest.param({}, Client("c", "0" * 64, frozenset({"other"})), "user_info", "client_account",
                     id="client-other-account"),
        pytest.param({}, Client("c", "0" * 64, frozenset({"main"}), frozenset({"user_info"})),
                     "order_create", "client_method_not_allowed", id="client-scope"),
        pytest.param({"read_only": True}, None, "order_cancel", "read_only", id="read-only"),
        pytest.param({"read_only": True}, None, "some_new_method", "read_only", id="read-only-unknown"),
        pytest.param({"allow": frozenset({"user_info"})}, None, "order_create", "method_not_allowed",
                     id="account-allow"),
    ],
)
def test_policy_rules(rules: dict[str, Any], client: Client | None, method: str, rule: str) -> None:
    """Each policy rule refuses with its own slug."""
    with pytest.raises(PolicyDenied) as info:
        policy.check(account(**rules), method, client)
    assert info.value.rule == rule


def test_client_with_both_opt_ins_may_withdraw() -> None:
    """Account allow_withdrawals plus the method in the client's allow list: permitted."""
    client = Client("c", "0" * 64, frozenset({"main"}), frozenset({"withdraw_crypt"}))
    policy.check(account(allow_withdrawals=True), "withdraw_crypt", client)


def test_halt_allowlist_keeps_unwinding_possible() -> None:
    """While halted, reads, cancels and closes pass; creation, updates and money out do not."""
    for method in ("order_cancel", "stop_market_order_cancel", "margin/user/position/close", "user_info"):
        assert method in methods.ALLOWED_WHILE_HALTED
    for method in ("order_create", "stop_market_order_create", "margin/user/order/update",
                   "margin/user/position/margin_remove", "withdraw_crypt", "excode_create", "new_method"):
        assert method not in methods.ALLOWED_WHILE_HALTED
