"""Simulator settings: the frozen ``SimulatorConfig``, the demo credentials and the accounts file.

The accounts file is a YAML mapping ``key: secret`` (exmo-api.md §1.2: ``K-`` / ``S-`` + 40 hex).
Error messages name the file and, at most, a key, never a secret: YAML parser messages quote the
offending line, so they are deliberately not passed on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import yaml

# Obviously fake pair in EXMO's format (exmo-api.md §1.2) for running without an accounts file.
DEMO_KEY = "K-" + "deadbeef" * 5
DEMO_SECRET = "S-" + "feedface" * 5

RATE_LIMIT_STYLES = frozenset({"40034", "retry_after"})  # the two texts of exmo-api.md §5


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulator needs: accounts (API key → secret) and how hostile to be."""

    accounts: Mapping[str, str] = field(repr=False)
    delay_ms: int = 0  # maximum random processing delay per request; 0 = none
    rate_limit: int = 10  # requests per second per key and per IP (exmo-api.md §5); 0 = off
    seed: int | None = None  # seeds the delay generator, for reproducible reordering
    rate_limit_style: str = "40034"  # or "retry_after" (exmo-api.md §5, second text)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", MappingProxyType(dict(self.accounts)))
        if self.delay_ms < 0 or self.rate_limit < 0:
            raise ValueError("delay_ms and rate_limit must not be negative")
        if self.rate_limit_style not in RATE_LIMIT_STYLES:
            raise ValueError(f"rate_limit_style must be one of {sorted(RATE_LIMIT_STYLES)}")


def load_accounts_file(path: str) -> dict[str, str]:
    """Read a YAML mapping ``key: secret``; raise ``ValueError`` with a one-line message."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ValueError(f"accounts file {path}: cannot read ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ValueError(f"accounts file {path}: not valid YAML") from None
    return _validated(path, data)


def _validated(path: str, data: object) -> dict[str, str]:
    if not isinstance(data, dict) or not data:
        raise ValueError(f"accounts file {path}: expected a non-empty mapping of key: secret")
    accounts: dict[str, str] = {}
    for key, secret in data.items():
        if not isinstance(key, str) or not key.strip() or key != key.strip():
            raise ValueError(f"accounts file {path}: every key must be a non-blank string")
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"accounts file {path}: the secret for {key} must be a string")
        accounts[key] = secret
    return accounts
