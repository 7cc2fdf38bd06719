"""Client tokens: generation, the stored hash, and authentication of `Authorization: Bearer`.

A token is 256 random bits, shown once by `exmo-proxy client add`; the config keeps only its
SHA-256 (a fast hash is enough for a random 256-bit value: there is nothing to brute-force). Every
configured hash is compared in constant time, with no early exit, so timing says nothing about which
client or how many bytes matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from proxy.scopes import Client

TOKEN_PREFIX = "exmo-proxy_"  # noqa: S105 - a recognisable prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(header: str | None, clients: Mapping[str, Client]) -> Client | None:
    """The client whose token is in `header`, or None."""
    token = bearer_token(header)
    if token is None:
        return None
    presented = token_hash(token)
    found: Client | None = None
    for client in clients.values():
        if hmac.compare_digest(presented, client.token_sha256):
            found = client
    return found
