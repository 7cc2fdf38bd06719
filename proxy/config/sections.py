"""The config's sections: `limits`, `audit`, `cache`, `encryption`, and the top-level switches.

Each parser takes the raw YAML value (or None when the section is absent), checks every key and
range, and returns a frozen value; problems are a ConfigError naming the dotted key. A field marked
`RESTART_ONLY` keeps its old value on a SIGHUP reload (model.keep_restart_only).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from proxy.config.checks import ConfigError, check_keys, check_string
from proxy.exmo.methods import PUBLIC_METHODS
from proxy.vault.encryption import FORMAT_VERSION, FormatError, KdfParams, b64decode

RESTART_ONLY = MappingProxyType({"restart_only": True})  # dataclass field metadata: see the docstring
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Limits:
    rate_per_second: float = 10.0
    max_body_bytes: int = field(default=65536, metadata=RESTART_ONLY)  # aiohttp's own cap is set at start
    upstream_timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    max_wait_s: float = 10.0  # below common bot timeouts (ccxt: 10 s)


LIMIT_BOUNDS: dict[str, tuple[float, float]] = {
    "rate_per_second": (0.1, 100_000), "max_body_bytes": (256, 16 * 1024 * 1024),
    "upstream_timeout_s": (0.1, 600), "connect_timeout_s": (0.1, 120), "max_wait_s": (0, 600),
}


def seconds(doc: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    """A top-level duration in seconds, a number in low..high."""
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{key}: must be a number of seconds in {_plain(low)}..{_plain(high)}")
    return float(value)


def _plain(number: float) -> str:
    return f"{number:.0f}" if float(number).is_integer() else f"{number:g}"  # 2592000, not 2.592e+06


def limits(raw: Any) -> Limits:
    values = check_keys(raw if raw is not None else {}, set(LIMIT_BOUNDS), "limits")
    out: dict[str, float] = {}
    for name, value in values.items():
        low, high = LIMIT_BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"limits.{name}: must be a number in {low:g}..{high:g}")
        out[name] = int(value) if name == "max_body_bytes" else float(value)
    return Limits(**out)  # type: ignore[arg-type]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s)?$")


def cache(raw: Any) -> Mapping[str, float]:
    """`cache: {ticker: 1s, order_book: 500ms}` (a bare number is seconds); public methods only."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, dict):
        raise ConfigError("cache: must map public methods to durations, e.g. {ticker: 1s}")
    out: dict[str, float] = {}
    for method, value in raw.items():
        if method not in PUBLIC_METHODS:
            raise ConfigError(f"cache.{method}: only public methods can be cached, e.g. ticker, order_book")
        found = _DURATION.match(str(value)) if not isinstance(value, bool) else None
        if found is None or float(found.group(1)) > 3600:
            raise ConfigError(f"cache.{method}: must be a duration like 1s or 500ms (at most 3600s)")
        out[method] = float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)
    return MappingProxyType(out)


@dataclass(frozen=True)
class Features:
    """Top-level switches: `access_log`, `metrics` (both on by default) and `event_loop`."""

    access_log: bool = True
    metrics: bool = True
    event_loop: str = field(default="auto", metadata=RESTART_ONLY)  # auto: uvloop if installed, else asyncio


FEATURE_KEYS = {"access_log", "metrics", "event_loop"}
EVENT_LOOPS = ("auto", "asyncio", "uvloop")


def features(doc: Mapping[str, Any]) -> Features:
    found: dict[str, Any] = {}
    for name in ("access_log", "metrics"):
        value = doc.get(name, True)
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false")
        found[name] = value
    loop = doc.get("event_loop", "auto")
    if loop not in EVENT_LOOPS:
        raise ConfigError(f"event_loop: must be one of {', '.join(EVENT_LOOPS)}")
    return Features(event_loop=loop, **found)


@dataclass(frozen=True)
class Streams:
    """The WebSocket relay (SPEC §5b): how many streams, and how long a client may leave frames unread."""

    max_open: int = 256  # streams open at once, every client together
    max_per_client: int = 16  # per client token; without clients, per daemon like max_open
    send_timeout_s: float = 10.0  # a frame the client does not take within this closes its stream


STREAM_BOUNDS: dict[str, tuple[float, float]] = {
    "max_open": (1, 100_000), "max_per_client": (1, 100_000), "send_timeout_s": (0.1, 600),
}


def streams(raw: Any) -> Streams:
    values = check_keys(raw if raw is not None else {}, set(STREAM_BOUNDS), "streams")
    out: dict[str, float] = {}
    for name, value in values.items():
        low, high = STREAM_BOUNDS[name]
        whole = name != "send_timeout_s"
        kinds = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            kind = "a whole number" if whole else "a number of seconds"
            raise ConfigError(f"streams.{name}: must be {kind} in {_plain(low)}..{_plain(high)}")
        out[name] = int(value) if whole else float(value)
    return Streams(**out)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AuditSettings:
    redact: frozenset[str] = frozenset()  # parameter names whose values are written as "***"
    max_bytes: int = 16 * 1024 * 1024  # rotate before a write that would make the file larger
    keep: int = 5  # rotated files kept: audit.jsonl.1 (newest) ... audit.jsonl.<keep>
    fsync: bool = False  # fsync every entry before the answer: survives power loss, costs a disk flush


def audit(raw: Any) -> AuditSettings:
    values = check_keys(raw if raw is not None else {}, {"redact", "max_bytes", "keep", "fsync"}, "audit")
    redact = values.get("redact", [])
    if not isinstance(redact, list) or not all(isinstance(n, str) and n for n in redact):
        raise ConfigError("audit.redact: must be a list of parameter names, e.g. [client_id]")
    max_bytes = values.get("max_bytes", AuditSettings.max_bytes)
    keep = values.get("keep", AuditSettings.keep)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 4096 <= max_bytes <= 2**40:
        raise ConfigError("audit.max_bytes: must be a whole number of bytes from 4096 up")
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 1000:
        raise ConfigError("audit.keep: must be a whole number of rotated files, 1..1000")
    fsync = values.get("fsync", False)
    if not isinstance(fsync, bool):
        raise ConfigError("audit.fsync: must be true or false")
    return AuditSettings(redact=frozenset(redact), max_bytes=max_bytes, keep=keep, fsync=fsync)


def encryption(raw: Any) -> tuple[KdfParams, str]:
    """The `encryption` header `init` writes: Argon2id parameters (bounded) and the wrapped data key."""
    enc = check_keys(raw, {"version", "kdf", "wrapped_key"}, "encryption")
    if enc.get("version") != FORMAT_VERSION:
        raise ConfigError(f"encryption.version: must be {FORMAT_VERSION}")
    kdf = check_keys(enc.get("kdf"), {"alg", "m", "t", "p", "salt"}, "encryption.kdf")
    if kdf.get("alg") != "argon2id":
        raise ConfigError("encryption.kdf.alg: must be argon2id")
    for name in ("m", "t", "p"):
        if isinstance(kdf.get(name), bool) or not isinstance(kdf.get(name), int):
            raise ConfigError(f"encryption.kdf.{name}: must be an integer")
    try:
        salt = b64decode(check_string(kdf.get("salt"), "encryption.kdf.salt"), "encryption.kdf.salt")
        params = KdfParams(salt=salt, m=kdf["m"], t=kdf["t"], p=kdf["p"])
        params.check_bounds()
    except FormatError as exc:
        raise ConfigError(str(exc)) from None
    return params, check_string(enc.get("wrapped_key"), "encryption.wrapped_key")
