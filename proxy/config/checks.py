"""`ConfigError` and the checks every part of the config uses: known keys, names, strings, flags.

Every problem with the config is a `ConfigError` whose message names the dotted key, so the CLI can
print one line and exit 2.
"""

from __future__ import annotations

from typing import Any

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class ConfigError(Exception):
    """The config is unusable; the message names the file and the dotted key."""


def check_keys(mapping: Any, allowed: set[str] | frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        label = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(label + k for k in unknown)}"
            f" (allowed: {', '.join(sorted(allowed))})"
        )
    return mapping


def check_string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a non-empty string")
    return value


def check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false")
    return value


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not set(name) <= NAME_CHARS:
        raise ConfigError(f"{where}: {name!r} is not a valid name (letters, digits, _ and -; max 64)")
    return name


def check_api_key(value: Any, where: str) -> str:
    key = check_string(value, where)
    if len(key) > 256 or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(f"{where}: not a valid API key (expected e.g. K-<40 hex>)")
    return key
