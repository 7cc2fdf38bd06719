"""Accounts as the config states them: API key, secret (sealed or open) and what the account may do.

An account's `AccountPolicy` (allow list, read-only, withdrawals, withdrawal addresses, pairs and
order-size limits) is parsed here into frozen values; policy/ applies it to requests. Limits are
Decimals parsed from the text the user wrote, never floats. The same `AccountOf` holds the secret as
the file has it (the `enc:v1:` text, a `SealedAccount`) and, once decrypted, as a `Secret` (`Account`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from proxy.config.checks import ConfigError, check_api_key, check_bool, check_keys, check_name, check_string
from proxy.vault.encryption import VALUE_PREFIX
from proxy.vault.secret import Secret

METHOD_NAME = re.compile(r"^[a-z0-9_]+(?:/[a-z0-9_]+)*$")
PAIR_NAME = re.compile(r"^[A-Z0-9]{2,12}_[A-Z0-9]{2,12}$")

POLICY_KEYS = {"allow", "allow_withdrawals", "read_only", "withdraw_addresses", "allowed_pairs",
               "max_order_quantity", "max_order_notional", "rate_per_second"}
ACCOUNT_KEYS = {"key", "secret", "paper", *POLICY_KEYS}


def _empty() -> Mapping[str, Decimal]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Destination:
    """One allowed withdrawal destination. A memo (`invoice`) picks the receiving account at an
    exchange for XRP-style coins, so it must match too; `transport` (network) if given."""

    address: str
    invoice: str | None = None
    transport: str | None = None


@dataclass(frozen=True)
class AccountPolicy:
    allow: frozenset[str] | None = None
    allow_withdrawals: bool = False
    read_only: bool = False
    withdraw_addresses: Mapping[str, tuple[Destination, ...]] | None = None
    allowed_pairs: frozenset[str] | None = None
    max_order_quantity: Mapping[str, Decimal] = field(default_factory=_empty)
    max_order_notional: Mapping[str, Decimal] = field(default_factory=_empty)
    rate_per_second: float | None = None  # this account's own pace, under the shared limit


def name_list(value: Any, where: str, pattern: re.Pattern[str], example: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: must be a list, e.g. {example}")
    bad = [v for v in value if not pattern.match(v)]
    if bad:
        raise ConfigError(f"{where}: {bad[0]!r} is not valid here (e.g. {example})")
    return frozenset(value)


def method_list(value: Any, where: str) -> frozenset[str] | None:
    return None if value is None else name_list(value, where, METHOD_NAME, "[user_info, order_create]")


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: must be a positive number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise ConfigError(f"{where}: must be a positive number")
    return number


def _pair_limits(value: Any, where: str) -> Mapping[str, Decimal]:
    if value is None:
        return _empty()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must map pairs to numbers, e.g. {{BTC_USDT: 0.5}}")
    for pair in value:
        if not isinstance(pair, str) or not PAIR_NAME.match(pair):
            raise ConfigError(f"{where}: {pair!r} is not a pair like BTC_USDT")
    return MappingProxyType({pair: _decimal(v, f"{where}.{pair}") for pair, v in value.items()})


def _destination(item: Any, where: str) -> Destination:
    if isinstance(item, str) and item:
        return Destination(item)
    if isinstance(item, dict) and set(item) <= {"address", "invoice", "transport"}:
        parts = {k: v for k, v in item.items() if v is not None}
        if isinstance(parts.get("address"), str) and parts["address"] and all(
            isinstance(v, str) for v in parts.values()
        ):
            return Destination(parts["address"], parts.get("invoice"), parts.get("transport"))
    raise ConfigError(f"{where}: each entry is an address, or {{address: ..., invoice: ..., transport: ...}}")


def _addresses(value: Any, where: str) -> Mapping[str, tuple[Destination, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must map currencies to address lists, e.g. {{BTC: [bc1q...]}}")
    out: dict[str, tuple[Destination, ...]] = {}
    for currency, addresses in value.items():
        if not isinstance(currency, str) or not currency.isalnum():
            raise ConfigError(f"{where}: {currency!r} is not a currency code like BTC")
        if not isinstance(addresses, list):
            raise ConfigError(f"{where}.{currency}: must be a list of addresses")
        out[currency.upper()] = tuple(_destination(a, f"{where}.{currency}") for a in addresses)
    return MappingProxyType(out)


def account_policy(entry: Mapping[str, Any], where: str) -> AccountPolicy:
    pairs = entry.get("allowed_pairs")
    return AccountPolicy(
        allow=method_list(entry.get("allow"), f"{where}.allow"),
        allow_withdrawals=check_bool(entry.get("allow_withdrawals", False), f"{where}.allow_withdrawals"),
        read_only=check_bool(entry.get("read_only", False), f"{where}.read_only"),
        withdraw_addresses=_addresses(entry.get("withdraw_addresses"), f"{where}.withdraw_addresses"),
        allowed_pairs=None if pairs is None else name_list(pairs, f"{where}.allowed_pairs", PAIR_NAME,
                                                        "[BTC_USDT, ETH_USDT]"),
        max_order_quantity=_pair_limits(entry.get("max_order_quantity"), f"{where}.max_order_quantity"),
        max_order_notional=_pair_limits(entry.get("max_order_notional"), f"{where}.max_order_notional"),
        rate_per_second=_rate(entry.get("rate_per_second"), f"{where}.rate_per_second"),
    )


def _rate(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 10000:
        raise ConfigError(f"{where}: must be a number of requests per second, 0.1..10000")
    return float(value)


SecretT = TypeVar("SecretT")


def secret_path(name: str) -> str:
    """An account secret's dotted YAML path: the associated data its encryption is bound to."""
    return f"accounts.{name}.secret"


@dataclass(frozen=True)
class AccountOf(Generic[SecretT]):
    """One account: its name, EXMO API key, secret and rules. The secret never shows in a repr."""

    name: str
    key: str
    secret: SecretT = field(repr=False)
    policy: AccountPolicy = field(default_factory=AccountPolicy)
    paper: bool = False  # paper trading (SPEC §11): its private calls never leave the daemon

    @property
    def secret_path(self) -> str:
        return secret_path(self.name)


SealedAccount = AccountOf[str]  # as read from the file: the secret is its `enc:v1:` text
Account = AccountOf[Secret]  # decrypted: what the daemon signs with


def sealed_account(name: Any, raw: Any, paper: bool = False) -> SealedAccount:
    """One account entry; `paper` (run --paper) makes it a paper account whatever it says."""
    where = f"accounts.{check_name(name, 'accounts')}"
    entry = check_keys(raw, ACCOUNT_KEYS, where)
    for required in ("key", "secret"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: missing")
    secret = check_string(entry["secret"], f"{where}.secret")
    if not secret.startswith(VALUE_PREFIX):
        raise ConfigError(
            f"{where}.secret: a plaintext secret is refused; store it encrypted with "
            f"`exmo-proxy account set-secret {name}`"
        )
    return SealedAccount(name, check_api_key(entry["key"], f"{where}.key"), secret,
                         account_policy(entry, where),
                         paper or check_bool(entry.get("paper", False), f"{where}.paper"))
