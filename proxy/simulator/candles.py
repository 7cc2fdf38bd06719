"""``candles_history``: deterministic OHLCV around the reference price, and its own error shape.

Parameters ``symbol``, ``resolution`` (1,5,15,30,45,60,120,180,240,D,W,M), ``from``, ``to`` in Unix
seconds (exmo-api.md §2.1). Errors are ``{"s":"error","errmsg":…}`` (§4.1); the ``from``/``to``
texts copy the Go ``strconv`` message EXMO sends for an empty value.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from proxy.exchange import errors
from proxy.simulator import market

RESOLUTION_SECONDS: dict[str, int] = {
    **{str(m): m * 60 for m in (1, 5, 15, 30, 45, 60, 120, 180, 240)},
    "D": 86400, "W": 7 * 86400, "M": 30 * 86400,
}
# [INF] EXMO's cap is not documented; ccxt asks for at most 3000 candles ("range period is too
# long" is one of its broad error texts), so refuse well beyond that.
MAX_CANDLES = 5000


def _unix(params: Mapping[str, str], name: str) -> int:
    raw = params.get(name, "")
    if not (raw.isascii() and raw.lstrip("-").isdigit()):
        raise errors.candles(f'strconv.ParseInt: parsing "{raw}": invalid syntax')
    return int(raw)


def _wiggle(index: int, salt: int) -> Decimal:
    """A deterministic offset within ±0.5 % that depends only on the candle's position."""
    return Decimal((index * 7 + salt * 3) % 11 - 5) / 1000


def _candle(pair: market.Pair, start: int, step: int) -> dict[str, Any]:
    index = start // step
    open_ = pair.reference * (1 + _wiggle(index, 0))
    close = pair.reference * (1 + _wiggle(index, 1))
    high = max(open_, close) * Decimal("1.002")
    low = min(open_, close) * Decimal("0.998")
    prices = (pair.round_price(v) for v in (open_, close, high, low))
    o, c, h, l_ = (float(v) for v in prices)
    volume = float(market.eight(Decimal(1 + index % 9) / 3))
    return {"t": start * 1000, "o": o, "c": c, "h": h, "l": l_, "v": volume}


def candles_history(ex: Any, params: Mapping[str, str], now: int) -> dict[str, Any]:
    """Candles whose start lies in ``[from, to]``; an unknown symbol gets none."""
    start, end = _unix(params, "from"), _unix(params, "to")
    step = RESOLUTION_SECONDS.get(params.get("resolution", ""))
    if step is None:
        raise errors.candles("invalid resolution")  # [UNCONFIRMED] text
    if (end - start) // step > MAX_CANDLES:
        raise errors.candles("range period is too long")
    pair = market.find(params.get("symbol", ""))
    if pair is None or end < start:
        return {"candles": []}
    first = -(-start // step) * step
    return {"candles": [_candle(pair, t, step) for t in range(first, end + 1, step)]}
