"""EXMO request signing: pure functions, no I/O and no clock (exmo-api.md §1.3, §6.1).

`Sign` is the lower-case hex HMAC-SHA512 of the exact body bytes sent, keyed with the UTF-8 bytes of
the whole secret string (its `S-` prefix included). The body is built here, so the bytes we sign are
the bytes we send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlencode

Params = Sequence[tuple[str, str]]


def encode_body(params: Params, nonce: int) -> bytes:
    """Form body with `nonce` first, as ccxt sends it (exmo-api.md §1.2); order otherwise kept."""
    return urlencode([("nonce", str(nonce)), *params]).encode("ascii")


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha512).hexdigest()


def sign_ws_login(secret: bytes, api_key: str, nonce: int) -> str:
    """WebSocket login signature: base64 of the raw HMAC-SHA512 of api_key + nonce (§6.1)."""
    digest = hmac.new(secret, f"{api_key}{nonce}".encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode("ascii")
