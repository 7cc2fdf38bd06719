"""The config file: read once, validated into frozen dataclasses, secrets decrypted (SPEC §4).

Every problem is a `ConfigError` whose message names the dotted key, so the CLI can print one line
and exit 2. Relative paths in the file (state_dir) are resolved against the file's directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from proxy import logs, scopes, sections, unseal, vault
from proxy.addresses import DEFAULT_SOCKET_MODE as DEFAULT_SOCKET_MODE
from proxy.addresses import DEFAULT_UPSTREAM as DEFAULT_UPSTREAM
from proxy.addresses import Listen as Listen
from proxy.addresses import check_upstream, socket_mode
from proxy.audit import AuditSettings
from proxy.credentials import PassphraseSources, Secret
from proxy.hardening import PermissionProblem, check_private_file
from proxy.scopes import AccountPolicy, Client
from proxy.sections import LIMIT_BOUNDS as LIMIT_BOUNDS
from proxy.sections import Features, check_keys
from proxy.sections import Limits as Limits
from proxy.yamlfile import ConfigError as ConfigError  # re-exported: callers catch it from here
from proxy.yamlfile import read_document

log = logging.getLogger(__name__)

DEFAULT_PATH = "exmo-proxy.yaml"
CONFIG_ENV = "EXMO_PROXY_CONFIG"
DEFAULT_LISTEN = "127.0.0.1:8080"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

TOP_KEYS = {"listen", "upstream", "state_dir", "default_account", "accounts", "clients", "limits",
            "encryption", "log_level", "log_format", "socket_mode", "audit", "cache", "management_listen",
            *sections.FEATURE_KEYS}
ACCOUNT_KEYS = {"key", "secret", *scopes.POLICY_KEYS}
LOG_LEVELS = ("debug", "info", "warning", "error")


def default_config_path() -> str:
    return os.environ.get(CONFIG_ENV) or DEFAULT_PATH


@dataclass(frozen=True)
class Account:
    name: str
    key: str
    secret: Secret = field(repr=False)
    policy: AccountPolicy = field(default_factory=AccountPolicy)


@dataclass(frozen=True)
class Config:
    path: Path
    listen: Listen
    upstream: str
    state_dir: Path
    accounts: Mapping[str, Account]
    default_account: str | None = None
    limits: Limits = field(default_factory=Limits)
    log_level: str = "info"
    log_format: str = "text"
    management_listen: Listen | None = None
    clients: Mapping[str, Client] = field(default_factory=lambda: MappingProxyType({}))
    socket_mode: int = DEFAULT_SOCKET_MODE
    audit: AuditSettings = field(default_factory=AuditSettings)
    cache: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    features: Features = field(default_factory=Features)




def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: must be a non-empty string")
    return value


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not set(name) <= NAME_CHARS:
        raise ConfigError(f"{where}: {name!r} is not a valid name (letters, digits, _ and -; max 64)")
    return name


def check_api_key(value: Any, where: str) -> str:
    key = _string(value, where)
    if len(key) > 256 or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(f"{where}: not a valid API key (expected e.g. K-<40 hex>)")
    return key


def _listen(value: Any, where: str = "listen") -> Listen:
    try:
        return Listen.parse(_string(value, where))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class AccountEntry:
    """An account as written in the file; `secret` is still the `enc:v1:` text."""

    name: str
    key: str
    secret: str = field(repr=False)
    policy: AccountPolicy = field(default_factory=AccountPolicy)


def account_entry(name: Any, raw: Any) -> AccountEntry:
    where = f"accounts.{check_name(name, 'accounts')}"
    entry = check_keys(raw, ACCOUNT_KEYS, where)
    for required in ("key", "secret"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: missing")
    secret = _string(entry["secret"], f"{where}.secret")
    if not secret.startswith(vault.VALUE_PREFIX):
        raise ConfigError(
            f"{where}.secret: a plaintext secret is refused; store it encrypted with "
            f"`exmo-proxy account set-secret {name}`"
        )
    return AccountEntry(name, check_api_key(entry["key"], f"{where}.key"), secret,
                        scopes.account_policy(entry, where))


def encryption_header(raw: Any) -> tuple[vault.KdfParams, str]:
    enc = check_keys(raw, {"version", "kdf", "wrapped_key"}, "encryption")
    if enc.get("version") != vault.FORMAT_VERSION:
        raise ConfigError(f"encryption.version: must be {vault.FORMAT_VERSION}")
    kdf = check_keys(enc.get("kdf"), {"alg", "m", "t", "p", "salt"}, "encryption.kdf")
    if kdf.get("alg") != "argon2id":
        raise ConfigError("encryption.kdf.alg: must be argon2id")
    for name in ("m", "t", "p"):
        if isinstance(kdf.get(name), bool) or not isinstance(kdf.get(name), int):
            raise ConfigError(f"encryption.kdf.{name}: must be an integer")
    try:
        salt = vault.b64decode(_string(kdf.get("salt"), "encryption.kdf.salt"), "encryption.kdf.salt")
        params = vault.KdfParams(salt=salt, m=kdf["m"], t=kdf["t"], p=kdf["p"])
        params.check_bounds()
    except vault.FormatError as exc:
        raise ConfigError(str(exc)) from None
    return params, _string(enc.get("wrapped_key"), "encryption.wrapped_key")


@dataclass(frozen=True)
class Document:
    """A validated config file whose secrets are still sealed."""

    path: Path
    listen: Listen
    upstream: str
    state_dir: Path
    accounts: tuple[AccountEntry, ...]
    default_account: str | None
    limits: Limits
    log_level: str
    log_format: str
    management_listen: Listen | None
    kdf: vault.KdfParams
    wrapped_key: str
    clients: Mapping[str, Client]
    socket_mode: int
    audit: AuditSettings
    cache: Mapping[str, float]
    features: Features


def _state_dir(value: Any, path: Path) -> Path:
    if value is None:
        return Path(os.environ.get("STATE_DIRECTORY") or path.resolve().parent / "exmo-proxy-state")
    return path.resolve().parent / _string(value, "state_dir")  # an absolute value replaces the base


def _default_account(value: Any, accounts: tuple[AccountEntry, ...]) -> str | None:
    names = [a.name for a in accounts]
    if value is None:
        return names[0] if len(names) == 1 else None
    if value not in names:
        raise ConfigError(f"default_account: {value!r} is not one of accounts ({', '.join(names)})")
    return str(value)


def validate(doc: dict[str, Any], path: Path, overrides: Mapping[str, str] | None = None) -> Document:
    """Check every key of `doc` (with CLI `overrides` applied); nothing is decrypted."""
    doc = {**doc, **(overrides or {})}
    check_keys(doc, TOP_KEYS, "")
    raw_accounts = doc.get("accounts") or {}
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise ConfigError("accounts: at least one account is needed (`exmo-proxy account add NAME`)")
    accounts = tuple(account_entry(n, a) for n, a in raw_accounts.items())
    clients = _clients(doc.get("clients"), frozenset(a.name for a in accounts))
    listen = _listen(doc.get("listen", DEFAULT_LISTEN))
    if not listen.is_loopback and not clients:
        raise ConfigError(
            f"listen: {listen.host} is not a loopback address; the daemon signs for anyone who can reach it,"
            " so it listens only on 127.0.0.1, ::1 or a unix socket unless clients (tokens) are configured"
        )
    level = doc.get("log_level", "info")
    if level not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}")
    log_format = doc.get("log_format", "text")
    if log_format not in logs.FORMATS:
        raise ConfigError("log_format: must be text or json")
    kdf, wrapped = encryption_header(doc.get("encryption"))
    return Document(
        path=path, listen=listen, upstream=check_upstream(doc.get("upstream", DEFAULT_UPSTREAM)),
        state_dir=_state_dir(doc.get("state_dir"), path), accounts=accounts,
        default_account=_default_account(doc.get("default_account"), accounts),
        limits=sections.limits(doc.get("limits")), log_level=level, log_format=log_format, kdf=kdf,
        wrapped_key=wrapped, management_listen=_management(doc.get("management_listen"), listen),
        clients=clients, socket_mode=socket_mode(doc.get("socket_mode"), bool(clients)),
        audit=sections.audit(doc.get("audit")), cache=sections.cache(doc.get("cache")),
        features=sections.features(doc),
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
    return MappingProxyType({check_name(n, "clients"): scopes.client(n, c, accounts) for n, c in raw.items()})


def sealed_values(document: Document) -> dict[str, str]:
    """The `enc:v1:` values to decrypt, by their YAML path (the path is their associated data)."""
    return {f"accounts.{a.name}.secret": a.secret for a in document.accounts}


def unlock_data_key(document: Document, passphrase: Secret) -> bytes:
    """The data key (vault.UnlockError on a wrong passphrase)."""
    return vault.unwrap_data_key(document.wrapped_key, passphrase.encode(), document.kdf)


def open_values(document: Document, passphrase: Secret) -> dict[str, str]:
    """Decrypt in this process (vault.UnlockError, vault.ValueAuthError naming the path)."""
    data_key = unlock_data_key(document, passphrase)
    return {path: vault.decrypt_value(data_key, path, text) for path, text in sealed_values(document).items()}


def read_config(path: Path, overrides: Mapping[str, str] | None = None) -> Document:
    """Read and validate, decrypting nothing."""
    try:
        check_private_file(path, "config file", warn=log.warning)
    except PermissionProblem as exc:
        raise ConfigError(str(exc)) from None
    except OSError:
        pass  # read_document names the problem (missing, unreadable)
    return validate(read_document(path), path, overrides)


def unsealing(document: Document, passphrase: Secret) -> unseal.Unsealing:
    """Start decrypting in a child process (unseal.py); `.result()` gives the values."""
    return unseal.Unsealing(document.kdf, document.wrapped_key, sealed_values(document), passphrase.reveal())


def assemble(document: Document, values: Mapping[str, str]) -> Config:
    """The Config, given the decrypted values by path."""
    accounts = {a.name: Account(a.name, a.key, Secret(values[f"accounts.{a.name}.secret"]), a.policy)
                for a in document.accounts}
    return Config(
        path=document.path, listen=document.listen, upstream=document.upstream,
        state_dir=document.state_dir, accounts=MappingProxyType(accounts),
        default_account=document.default_account, limits=document.limits, log_level=document.log_level,
        log_format=document.log_format, management_listen=document.management_listen,
        clients=document.clients, socket_mode=document.socket_mode, audit=document.audit,
        cache=document.cache, features=document.features,
    )


def load_config(path: Path, passphrases: PassphraseSources,
                overrides: Mapping[str, str] | None = None, *, isolated: bool = False) -> Config:
    """Read, validate and decrypt: the one way the daemon and `check` get a Config. `isolated`
    decrypts in a child process (the daemon, see unseal.py); otherwise in this one."""
    document = read_config(path, overrides)
    if isolated:
        return assemble(document, unsealing(document, passphrases.get()).result())
    return assemble(document, open_values(document, passphrases.get()))
