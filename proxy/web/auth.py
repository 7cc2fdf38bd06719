"""Client authentication: the `Authorization: Bearer` token against the configured clients.

Only tokens' SHA-256 hashes are configured (config/clients.py). Every configured hash is compared in
constant time, with no early exit, so timing says nothing about which client or how many bytes
matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from proxy.config.clients import Client, token_hash
from proxy.web.errors import ProxyError


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


def require_client(header: str | None, clients: Mapping[str, Client]) -> Client:
    """The authenticated client, or a 401 refusal."""
    client = authenticate(header, clients)
    if client is None:
        raise ProxyError(401, "unauthorized", "missing or unknown bearer token: send Authorization:"
                                              " Bearer <token> (from `exmo-proxy client add`)")
    return client
