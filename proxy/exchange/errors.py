"""EXMO's error answers: the exact texts and the three envelope shapes the simulator sends.

Every error is an ``ExmoError`` carrying the JSON payload and a short code for ``/_sim/stats``.
All of them go out with HTTP 200 (exmo-api.md §4.1). Texts are quoted from exmo-api.md §3, §4.3
and §5; where EXMO's text for a case was never seen, the nearest observed one is reused rather
than inventing a new code (marked [UNCONFIRMED] below).
"""

from __future__ import annotations

from typing import Any


class ExmoError(Exception):
    """An EXMO-shaped error answer; ``code`` keys the error counter in ``/_sim/stats``."""

    def __init__(self, code: str, payload: dict[str, Any]) -> None:
        super().__init__(code)
        self.code = code
        self.payload = payload


def classic(code: str, text: str) -> ExmoError:
    """``{"result":false,"error":text}``: the spot/account envelope (§4.1)."""
    return ExmoError(code, {"result": False, "error": text})


def numbered(code: int, text: str) -> ExmoError:
    """``Error NNNNN: text``, the prefix most errors carry (§4.3)."""
    return classic(str(code), f"Error {code}: {text}")


def get_params_in_post() -> ExmoError:
    return numbered(40038, "GET parameters are forbidden in POST requests")  # §1.1, §4.3


def wrong_api_key() -> ExmoError:
    return numbered(40017, "Wrong api key")  # §4.3


def bad_signature() -> ExmoError:
    return numbered(40005, "Authorization error, Incorrect signature")  # §4.3


def nonce_too_low(last: int) -> ExmoError:
    # §3: no "Error " prefix, the highest accepted nonce in double quotes.
    return classic("40009", f'40009: The nonce parameter is less or equal than what was used before "{last}"')


def rate_limited(style: str, ip: str) -> ExmoError:
    """The two texts EXMO uses for rate limiting (§5); ``style`` picks one."""
    if style == "retry_after":
        return classic("rate_limit", f"API rate limit exceeded for {ip}. Retry after 60 sec.")
    return numbered(40034, "Access is denied, rate limit is exceeded")


def no_such_method(version: str, method: str) -> ExmoError:
    return numbered(40015, f"API function do not exist - /{version}/{method}/")  # §1.1, §4.3


def missing_param(name: str) -> ExmoError:
    return numbered(50013, f"Parameter '{name}' is not specified")  # §4.3


def invalid_value(name: str) -> ExmoError:
    # [UNCONFIRMED] EXMO's text for a present but invalid value (unknown pair, order type,
    # currency, EX-CODE) was not seen; reuse 50013's text instead of inventing a code.
    return missing_param(name)


def not_a_number(name: str) -> ExmoError:
    return numbered(50049, f"Parameter is not a number '{name}'")  # ccxt#2124


def insufficient_funds() -> ExmoError:
    return numbered(50052, "Insufficient funds")  # §4.3


def quantity_below_min() -> ExmoError:
    return numbered(50277, "Quantity by order is less than permissible minimum for this pair")


def price_below_min() -> ExmoError:
    return numbered(50319, "Price by order is less than permissible minimum for this pair")


def price_above_max() -> ExmoError:
    return numbered(50321, "Price by order is more than permissible maximum for this pair")


def too_many_decimals(places: int, pair: str) -> ExmoError:
    return numbered(50381, f"More than {places} decimal places are not permitted for pair {pair}")


def order_not_found(order_id: str) -> ExmoError:
    return numbered(50173, f"Order with id {order_id} was not found.")  # §4.3 (cancel)


def order_has_no_trades(order_id: str) -> ExmoError:
    return numbered(50304, f"Order was not found '{order_id}'")  # §4.3 (order_trades)


def margin_balance() -> ExmoError:
    """The margin endpoints' own shape, no ``result`` field (§4.1, §4.3 140434)."""
    msg = "Your margin balance is not sufficient to place the order"
    return ExmoError("140434", {"error": {"code": "140434", "msg": msg}})


def candles(errmsg: str) -> ExmoError:
    """``candles_history``'s own shape (§4.1)."""
    return ExmoError("candles_history", {"s": "error", "errmsg": errmsg})
