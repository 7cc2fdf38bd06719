"""An order book as the engine reads it: price levels on each side, best first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

Level = tuple[Decimal, Decimal]  # price, quantity


@dataclass(frozen=True)
class Book:
    asks: tuple[Level, ...]  # lowest price first
    bids: tuple[Level, ...]  # highest price first

    def side(self, buying: bool) -> tuple[Level, ...]:
        """What an order takes from: the asks for a buy, the bids for a sell."""
        return self.asks if buying else self.bids

    @classmethod
    def from_order_book(cls, raw: Mapping[str, Any]) -> Book:
        """From one pair's entry of EXMO's ``order_book`` (``"ask": [[price, quantity, amount], …]``)."""
        try:
            asks = tuple(sorted((Decimal(str(r[0])), Decimal(str(r[1]))) for r in raw.get("ask", [])))
            bids = tuple(sorted(((Decimal(str(r[0])), Decimal(str(r[1]))) for r in raw.get("bid", [])),
                                reverse=True))
        except (IndexError, TypeError, InvalidOperation) as exc:
            raise ValueError(f"order_book: {exc!r}") from None
        return cls(tuple(lv for lv in asks if lv[1] > 0), tuple(lv for lv in bids if lv[1] > 0))


def crossing(levels: tuple[Level, ...], buying: bool, limit: Decimal | None) -> list[Level]:
    """The levels an order at `limit` (None: a market order) may take, best first."""
    if limit is None:
        return list(levels)
    return [lv for lv in levels if (lv[0] <= limit if buying else lv[0] >= limit)]
