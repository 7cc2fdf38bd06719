"""A pair's trading rules as EXMO's ``pair_settings`` gives them: limits, precision and fees."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from proxy.exchange.money import num


@dataclass(frozen=True)
class PairRules:
    name: str
    min_quantity: Decimal
    max_quantity: Decimal
    min_price: Decimal
    max_price: Decimal
    min_amount: Decimal
    max_amount: Decimal
    price_precision: int
    taker_percent: Decimal
    maker_percent: Decimal

    @property
    def base(self) -> str:
        return self.name.split("_")[0]

    @property
    def quote(self) -> str:
        return self.name.split("_")[1]

    def round_price(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-self.price_precision), ROUND_HALF_EVEN)

    def settings(self) -> dict[str, Any]:
        """This pair's ``pair_settings`` entry, as EXMO writes it."""
        return {
            "min_quantity": num(self.min_quantity), "max_quantity": num(self.max_quantity),
            "min_price": num(self.min_price), "max_price": num(self.max_price),
            "max_amount": num(self.max_amount), "min_amount": num(self.min_amount),
            "price_precision": self.price_precision,
            "commission_taker_percent": num(self.taker_percent),
            "commission_maker_percent": num(self.maker_percent),
        }

    @classmethod
    def from_settings(cls, name: str, raw: Mapping[str, Any]) -> PairRules:
        """From a ``pair_settings`` entry (ValueError when a field is missing or not a number)."""
        try:
            d = {k: Decimal(str(raw[k])) for k in ("min_quantity", "max_quantity", "min_price", "max_price",
                                                   "min_amount", "max_amount", "commission_taker_percent",
                                                   "commission_maker_percent")}
            return cls(name, d["min_quantity"], d["max_quantity"], d["min_price"], d["max_price"],
                       d["min_amount"], d["max_amount"], int(raw["price_precision"]),
                       d["commission_taker_percent"], d["commission_maker_percent"])
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ValueError(f"pair_settings of {name}: {exc!r}") from None
