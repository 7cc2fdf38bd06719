"""The config model: one frozen dataclass for everything the file says, validated once (SPEC §4).

`Settings` is that one model. `validate(doc, path)` checks every key and returns a `Document`: the
model with each account's secret still sealed (its `enc:v1:` text); load.py decrypts those and gives
a `Config`, the same model with each secret in a `Secret`. Adding a key means adding its field here,
its check in `validate`, and its line in config.example.yaml; which file keys exist, and which
settings only a restart can change (`RESTART_ONLY`), is read off the fields.

Relative paths in the file (state_dir) are resolved against the file's directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from proxy.config import sections
from proxy.config.accounts import Account, SealedAccount, sealed_account
from proxy.config.addresses import (
    DEFAULT_SOCKET_MODE,
    DEFAULT_UPSTREAM,
    DEFAULT_WS_UPSTREAM,
    Listen,
    check_upstream,
    check_ws_upstream,
    socket_mode,
)
from proxy.config.checks import ConfigError, check_keys, check_name, check_string
from proxy.config.clients import Client, client
from proxy.config.coordination import RedisSettings, redis
from proxy.config.paper import PaperSettings, paper
from proxy.config.sections import RESTART_ONLY, AuditSettings, Features, Limits, Streams
from proxy.vault.encryption import KdfParams

DEFAULT_LISTEN = "127.0.0.1:8080"

AccountsT = TypeVar("AccountsT")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def _keys(*names: str) -> Mapping[str, Any]:
    """Field metadata: the file keys this field is read from (default: its own name)."""
    return MappingProxyType({"file_keys": names})


@dataclass(frozen=True)
class Settings(Generic[AccountsT]):
    """Everything a config file says. `AccountsT` is how the accounts are held: see Document, Config."""

    path: Path = field(metadata=_keys())
    listen: Listen = field(metadata=RESTART_ONLY)
    upstream: str
    state_dir: Path = field(metadata=RESTART_ONLY)
    accounts: AccountsT
    kdf: KdfParams = field(repr=False, metadata=_keys("encryption"))
    wrapped_key: str = field(repr=False, metadata=_keys("encryption"))
    socket_mode: int = field(default=DEFAULT_SOCKET_MODE, metadata=RESTART_ONLY)
    management_listen: Listen | None = field(default=None, metadata=RESTART_ONLY)
    default_account: str | None = None
    limits: Limits = field(default_factory=Limits)
    log_level: str = "info"
    log_format: str = "text"
    clients: Mapping[str, Client] = field(default_factory=_empty)
    audit: AuditSettings = field(default_factory=AuditSettings)
    cache: Mapping[str, float] = field(default_factory=_empty)
    features: Features = field(default_factory=Features, metadata=_keys(*sections.FEATURE_KEYS))
    # SIGTERM: calls already inside are still sent while their answer fits in this many seconds
    shutdown_grace_s: float = field(default=25.0, metadata=RESTART_ONLY)
    idempotency_ttl_s: float = 86400.0  # how long a retry with the same Idempotency-Key gets the first answer
    ws_upstream: str = DEFAULT_WS_UPSTREAM  # EXMO's WebSocket API, for streams opened from here on
    streams: Streams = field(default_factory=Streams)
    redis: RedisSettings | None = field(default=None, metadata=RESTART_ONLY)  # shared state (SPEC §10)
    paper: PaperSettings = field(default_factory=PaperSettings)  # paper trading's balances (SPEC §11)


Document = Settings[tuple[SealedAccount, ...]]  # as validated: secrets sealed, accounts in file order
Config = Settings[Mapping[str, Account]]  # decrypted, accounts by name: what the daemon runs on


def _file_keys(spec: Field[Any]) -> tuple[str, ...]:
    return tuple(spec.metadata.get("file_keys", (spec.name,)))


TOP_KEYS = frozenset(key for spec in fields(Settings) for key in _file_keys(spec))


def _listen(value: Any, where: str = "listen") -> Listen:
    try:
        return Listen.parse(check_string(value, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _state_dir(value: Any, path: Path) -> Path:
    if value is None:
        return Path(os.environ.get("STATE_DIRECTORY") or path.resolve().parent / "exmo-proxy-state")
    return path.resolve().parent / check_string(value, "state_dir")  # an absolute value replaces the base


def _default_account(value: Any, accounts: tuple[SealedAccount, ...]) -> str | None:
    names = [a.name for a in accounts]
    if value is None:
        return names[0] if len(names) == 1 else None
    if value not in names:
        raise ConfigError(f"default_account: {value!r} is not one of accounts ({', '.join(names)})")
    return str(value)


def _choice(doc: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = doc.get(key, default)
    if value not in choices:
        expected = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
        raise ConfigError(f"{key}: must be {expected}")
    return str(value)


def validate(doc: dict[str, Any], path: Path, overrides: Mapping[str, str] | None = None) -> Document:
    """Check every key of `doc` (with CLI `overrides` applied); nothing is decrypted."""
    overrides = dict(overrides or {})
    redis_url = overrides.pop("redis_url", None)  # run --redis-url: the url inside the redis section
    all_paper = overrides.pop("paper", None) is not None  # run --paper: every account paper-trades
    doc = {**doc, **overrides}
    if redis_url is not None:
        raw_redis = doc.get("redis")
        doc["redis"] = {**(raw_redis if isinstance(raw_redis, dict) else {}), "url": redis_url}
    check_keys(doc, TOP_KEYS, "")
    raw_accounts = doc.get("accounts") or {}
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise ConfigError("accounts: at least one account is needed (`exmo-proxy account add NAME`)")
    accounts = tuple(sealed_account(n, a, all_paper) for n, a in raw_accounts.items())
    clients = _clients(doc.get("clients"), frozenset(a.name for a in accounts))
    listen = _listen(doc.get("listen", DEFAULT_LISTEN))
    if not listen.is_loopback and not clients:
        raise ConfigError(
            f"listen: {listen.host} is not a loopback address; the daemon signs for anyone who can reach it,"
            " so it listens only on 127.0.0.1, ::1 or a unix socket unless clients (tokens) are configured"
        )
    level = _choice(doc, "log_level", "info", sections.LOG_LEVELS)
    log_format = _choice(doc, "log_format", "text", sections.LOG_FORMATS)
    kdf, wrapped = sections.encryption(doc.get("encryption"))
    return Document(
        path=path, listen=listen, upstream=check_upstream(doc.get("upstream", DEFAULT_UPSTREAM)),
        state_dir=_state_dir(doc.get("state_dir"), path), accounts=accounts, kdf=kdf, wrapped_key=wrapped,
        default_account=_default_account(doc.get("default_account"), accounts),
        limits=sections.limits(doc.get("limits")),
        log_level=level, log_format=log_format,
        management_listen=_management(doc.get("management_listen"), listen),
        clients=clients, socket_mode=socket_mode(doc.get("socket_mode"), bool(clients)),
        audit=sections.audit(doc.get("audit")), cache=sections.cache(doc.get("cache")),
        features=sections.features(doc),
        shutdown_grace_s=sections.seconds(doc, "shutdown_grace_s", 25.0, 0, 3600),
        idempotency_ttl_s=sections.seconds(doc, "idempotency_ttl_s", 86400.0, 3600, 30 * 86400),
        ws_upstream=check_ws_upstream(doc.get("ws_upstream", DEFAULT_WS_UPSTREAM)),
        streams=sections.streams(doc.get("streams")),
        redis=redis(doc.get("redis"), path.resolve().parent),
        paper=paper(doc.get("paper")),
    )


def _management(raw: Any, listen: Listen) -> Listen | None:
    """Health and metrics only, so any address may be used (kubelet probes come from outside)."""
    if raw is None:
        return None
    found = _listen(raw, "management_listen")
    if found.unix_path or found == listen:
        raise ConfigError("management_listen: must be a HOST:PORT other than listen")
    return found


def _clients(raw: Any, accounts: frozenset[str]) -> Mapping[str, Client]:
    if raw is None or raw == {}:
        return MappingProxyType({})
    if not isinstance(raw, dict):
        raise ConfigError("clients: must be a mapping of client names")
    return MappingProxyType({check_name(n, "clients"): client(n, c, accounts) for n, c in raw.items()})


def with_accounts(document: Document, accounts: Mapping[str, Account]) -> Config:
    """The same settings, holding decrypted accounts."""
    values = {spec.name: getattr(document, spec.name) for spec in fields(document)}
    return Config(**{**values, "accounts": MappingProxyType(dict(accounts))})


SettingsT = TypeVar("SettingsT")


def keep_restart_only(old: SettingsT, new: SettingsT) -> tuple[SettingsT, list[str]]:
    """`new`, except that every `RESTART_ONLY` setting keeps its value in `old`; and the file names of
    those that differed (a running daemon keeps them until it restarts)."""
    kept: list[str] = []
    return _keep(old, new, "", kept), kept


def _keep(old: Any, new: Any, prefix: str, kept: list[str]) -> Any:
    changes: dict[str, Any] = {}
    for spec in fields(new):
        before, after = getattr(old, spec.name), getattr(new, spec.name)
        if before == after:
            continue
        if spec.metadata.get("restart_only"):
            kept.append(prefix + spec.name)
            changes[spec.name] = before
        elif is_dataclass(after) and not isinstance(after, type):
            # a section's own keys are named section.key, except the top-level switches (features)
            inner = prefix if "file_keys" in spec.metadata else f"{prefix}{spec.name}."
            changes[spec.name] = _keep(before, after, inner, kept)
    return replace(new, **changes) if changes else new
