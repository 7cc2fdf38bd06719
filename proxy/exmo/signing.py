"""EXMO request signing: pure functions, no I/O and no clock (exmo-api.md §1.3, §6.1).

`Sign` is the lower-case hex HMAC-SHA512 of the exact body bytes sent, keyed with the UTF-8 bytes of
the whole secret string (its `S-` prefix included). The body is built here, so the bytes we sign are
the bytes we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlencode

Params = tuple[tuple[str, str], ...]  # one call's parameters, in the order the client sent them


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what urlencode (quote_plus) leaves as it is


def encode_body(params: Sequence[tuple[str, str]], nonce: int) -> bytes:
    """Form body with `nonce` first, as ccxt sends it (exmo-api.md §1.2); order otherwise kept.

    Byte for byte what `urlencode` makes; parameters that need no escaping (nearly all: pairs,
    numbers, order types) skip its per-character work."""
    plain = _PLAIN.fullmatch
    if all(plain(name) and plain(value) for name, value in params):
        fields = "".join(f"&{name}={value}" for name, value in params)
        return f"nonce={nonce}{fields}".encode("ascii")
    return urlencode([("nonce", str(nonce)), *params]).encode("ascii")


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha512).hexdigest()


class Signer:
    """`sign` for one secret, with HMAC's keyed start state computed once and copied per call."""

    __slots__ = ("_start",)

    def __init__(self, secret: bytes) -> None:
        self._start = hmac.new(secret, digestmod=hashlib.sha512)

    def sign(self, body: bytes) -> str:
        mac = self._start.copy()
        mac.update(body)
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "Signer(***)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Signer objects cannot be pickled")


def sign_ws_login(secret: bytes, api_key: str, nonce: int) -> str:
    """WebSocket login signature: base64 of the raw HMAC-SHA512 of api_key + nonce (§6.1)."""
    digest = hmac.new(secret, f"{api_key}{nonce}".encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode("ascii")
