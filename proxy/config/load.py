"""Getting a Config: find the file, read and validate it, decrypt its secrets (SPEC §3, §4).

The daemon decrypts in a short-lived child (vault/unseal.py) so that `cryptography` and the Argon2id
peak stay out of it; `check` and the management commands decrypt in this process and exit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from proxy.config.accounts import Account
from proxy.config.checks import ConfigError
from proxy.config.coordination import SEALED_AT, RedisSettings
from proxy.config.model import Config, Document, validate, with_accounts
from proxy.config.yamlfile import read_document
from proxy.vault import encryption
from proxy.vault.hardening import PermissionProblem, check_private_file
from proxy.vault.passphrase import PassphraseSources
from proxy.vault.secret import Secret
from proxy.vault.unseal import Unsealing

log = logging.getLogger(__name__)

DEFAULT_PATH = "exmo-proxy.yaml"
CONFIG_ENV = "EXMO_PROXY_CONFIG"


def default_config_path() -> str:
    return os.environ.get(CONFIG_ENV) or DEFAULT_PATH


def read_config(path: Path, overrides: Mapping[str, str] | None = None) -> Document:
    """Read and validate, decrypting nothing."""
    try:
        check_private_file(path, "config file", warn=log.warning)
    except PermissionProblem as exc:
        raise ConfigError(str(exc)) from None
    except OSError:
        pass  # read_document names the problem (missing, unreadable)
    return validate(read_document(path), path, overrides)


def sealed_values(document: Document) -> dict[str, str]:
    """The `enc:v1:` values to decrypt, by their YAML path (the path is their associated data)."""
    values = {a.secret_path: a.secret for a in document.accounts}
    if document.redis is not None and document.redis.sealed_password is not None:
        values[SEALED_AT] = document.redis.sealed_password
    return values


def unlock_data_key(document: Document, passphrase: Secret) -> bytes:
    """The data key (encryption.UnlockError on a wrong passphrase)."""
    return encryption.unwrap_data_key(document.wrapped_key, passphrase.encode(), document.kdf)


def open_values(document: Document, passphrase: Secret) -> dict[str, str]:
    """Decrypt in this process (UnlockError, or ValueAuthError naming the path)."""
    data_key = unlock_data_key(document, passphrase)
    return {path: encryption.decrypt_value(data_key, path, text)
            for path, text in sealed_values(document).items()}


def open_redis_password(document: Document, passphrase: Callable[[], Secret]) -> RedisSettings:
    """The document's Redis settings with a sealed password decrypted (asking for the passphrase only
    then); for commands that need Redis and nothing else sealed (`halt`)."""
    settings = document.redis
    assert settings is not None
    if settings.sealed_password is None:
        return settings
    data_key = unlock_data_key(document, passphrase())
    return replace(settings, password=Secret(
        encryption.decrypt_value(data_key, SEALED_AT, settings.sealed_password)))


def unsealing(document: Document, passphrase: Secret) -> Unsealing:
    """Start decrypting in a child process (vault/unseal.py); `.result()` gives the values."""
    return Unsealing(document.kdf, document.wrapped_key, sealed_values(document), passphrase.reveal())


def assemble(document: Document, values: Mapping[str, str]) -> Config:
    """The Config, given the decrypted values by path."""
    config = with_accounts(document, {
        a.name: Account(a.name, a.key, Secret(values[a.secret_path]), a.policy, a.paper)
        for a in document.accounts})
    if config.redis is not None and SEALED_AT in values:
        config = replace(config, redis=replace(config.redis, password=Secret(values[SEALED_AT])))
    return config


def load_config(path: Path, passphrases: PassphraseSources,
                overrides: Mapping[str, str] | None = None, *, isolated: bool = False) -> Config:
    """Read, validate and decrypt: the one way the daemon and `check` get a Config. `isolated`
    decrypts in a child process (the daemon, see vault/unseal.py); otherwise in this one."""
    document = read_config(path, overrides)
    if isolated:
        return assemble(document, unsealing(document, passphrases.get()).result())
    return assemble(document, open_values(document, passphrases.get()))
