"""Money as EXMO writes it: ``Decimal`` throughout, eight decimals, numbers sent as plain strings."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

EIGHT = Decimal("0.00000001")


def num(value: Decimal) -> str:
    """EXMO sends numbers as plain decimal strings: ``"0"``, ``"60030"``, ``"0.1"``."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def eight(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, ROUND_HALF_EVEN)
