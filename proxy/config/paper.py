"""`paper:` — paper trading's settings (SPEC §11): what a paper account starts with.

    paper:
      balances: {USDT: 10000, USD: 10000}   # the default; any currencies, amounts as numbers or text

Which accounts are paper is said per account (`accounts.NAME.paper: true`), or for all of them with
`run --paper`. The balances apply to a paper account the first time it is used (and after
`exmo-proxy paper reset`); a change does not touch an account that already trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from proxy.config.checks import ConfigError, check_keys

CURRENCY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _default_balances() -> Mapping[str, Decimal]:
    return MappingProxyType({"USDT": Decimal(10000), "USD": Decimal(10000)})


@dataclass(frozen=True)
class PaperSettings:
    balances: Mapping[str, Decimal] = field(default_factory=_default_balances)


def paper(raw: Any) -> PaperSettings:
    if raw is None:
        return PaperSettings()
    values = check_keys(raw, {"balances"}, "paper")
    found = values.get("balances")
    if found is None:
        return PaperSettings()
    if not isinstance(found, dict) or not found:
        raise ConfigError("paper.balances: must map currencies to amounts, e.g. {USDT: 10000, BTC: 0.5}")
    balances = {}
    for cur, amount in found.items():
        if not isinstance(cur, str) or not 2 <= len(cur) <= 12 or not set(cur) <= CURRENCY:
            raise ConfigError(f"paper.balances: {cur!r} is not a currency code like USDT")
        try:
            value = Decimal(str(amount)) if not isinstance(amount, bool) else Decimal("NaN")
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0 or value > Decimal("1e15"):
            raise ConfigError(f"paper.balances.{cur}: must be an amount from 0 up, e.g. 10000")
        balances[cur] = value
    return PaperSettings(MappingProxyType(balances))
