"""Reading request parameters the way EXMO complains about them.

The form body (or public query) arrives as ``key=value&…``; the first value of a repeated key
wins. Missing → 50013, not numeric → 50049 (exmo-api.md §4.3; ccxt#2124).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from proxy.exchange import errors

Params = Mapping[str, str]


def parse_form(body: bytes) -> dict[str, str]:
    """Decode an urlencoded body; the first occurrence of a key wins."""
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    return params


def require(params: Params, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise errors.missing_param(name)
    return value


def decimal(params: Params, name: str, default: str | None = None) -> Decimal:
    """A finite decimal parameter; ``default`` makes it optional."""
    raw = params.get(name, "") or default
    if raw is None:
        raise errors.missing_param(name)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise errors.not_a_number(name) from None
    if not value.is_finite():
        raise errors.not_a_number(name)
    return value


def integer(params: Params, name: str, default: int | None = None) -> int:
    """A non-negative integer parameter; ``default`` makes it optional."""
    raw = params.get(name, "")
    if not raw and default is not None:
        return default
    if not raw:
        raise errors.missing_param(name)
    if not (raw.isascii() and raw.isdigit()):
        raise errors.not_a_number(name)
    return int(raw)


def page(params: Params, maximum: int = 100) -> tuple[int, int]:
    """``(offset, limit)`` with EXMO's default and cap of 100 (exmo-api.md §2.2)."""
    limit = min(integer(params, "limit", maximum) or maximum, maximum)
    return integer(params, "offset", 0), limit
