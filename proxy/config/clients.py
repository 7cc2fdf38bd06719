"""Clients: bots holding a bearer token, scoped to accounts and methods, as the config states them.

A token is 256 random bits, shown once by `exmo-proxy client add`; the config keeps only its
SHA-256 (a fast hash is enough for a random 256-bit value: there is nothing to brute-force).
Checking a presented token is web/auth.py's job.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from proxy.config.accounts import method_list, name_list
from proxy.config.checks import ConfigError

TOKEN_PREFIX = "exmo-proxy_"  # noqa: S105 - a recognisable prefix, not a secret
TOKEN_HASH = re.compile(r"^[0-9a-f]{64}$")
CLIENT_KEYS = {"token_sha256", "accounts", "allow", "streams"}


@dataclass(frozen=True)
class Client:
    """A bot holding a bearer token; only the token's SHA-256 is ever stored."""

    name: str
    token_sha256: str = field(repr=False)
    accounts: frozenset[str]
    allow: frozenset[str] | None = None
    streams: bool = True  # may open private WebSocket streams of its accounts (public ones: always)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def client(name: str, raw: Any, accounts: frozenset[str]) -> Client:
    where = f"clients.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping (create clients with `exmo-proxy client add`)")
    unknown = sorted(str(k) for k in raw if k not in CLIENT_KEYS)
    if unknown:
        raise ConfigError(f"unknown key {where}.{unknown[0]} (allowed: {', '.join(sorted(CLIENT_KEYS))})")
    token_hash = raw.get("token_sha256")
    if not isinstance(token_hash, str) or not TOKEN_HASH.match(token_hash):
        raise ConfigError(f"{where}.token_sha256: must be 64 lower-case hex digits (`exmo-proxy client add`)")
    allowed = name_list(raw.get("accounts"), f"{where}.accounts", re.compile(r"^[A-Za-z0-9_-]+$"), "[main]")
    missing = sorted(allowed - accounts)
    if missing:
        raise ConfigError(f"{where}.accounts: {missing[0]!r} is not one of accounts")
    streams = raw.get("streams", True)
    if not isinstance(streams, bool):
        raise ConfigError(f"{where}.streams: must be true or false")
    return Client(name, token_hash, allowed, method_list(raw.get("allow"), f"{where}.allow"), streams)
