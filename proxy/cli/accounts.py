"""Account commands: init, account add/remove/list/set-secret, and check.

Edits go through editing.py (comments kept, validated, atomic); secrets are read from the console
and stored sealed, never echoed.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from proxy.cli.console import Console
from proxy.cli.editing import indent_of, open_editable, remove_entry, save_edit, unlock_for_edit
from proxy.config import yamlfile
from proxy.config.accounts import Account, secret_path
from proxy.config.checks import ConfigError, check_api_key, check_name
from proxy.config.coordination import RedisSettings
from proxy.config.load import load_config, unlock_data_key
from proxy.config.model import validate
from proxy.config.template import account_lines, new_config_text
from proxy.durable import create_exclusive
from proxy.exmo.methods import is_known_private, is_public
from proxy.vault import encryption
from proxy.vault.passphrase import PassphraseSources


def _read_key(console: Console) -> str:
    key = check_api_key(console.read_key(), "API key")
    if key.startswith("S-"):
        raise ConfigError("API key: that looks like the secret (S-...); the public key starts with K-")
    return key


def init(path: Path, name: str, sources: PassphraseSources, console: Console) -> None:
    check_name(name, "--account")
    if path.exists():
        raise ConfigError(f"{path} already exists; init never overwrites (use `exmo-proxy account add`)")
    passphrase = sources.new()
    key = _read_key(console)
    text = new_config_text(name, key, console.read_secret(), passphrase)
    validate(yamlfile.parse_yaml(text, str(path)), path)
    try:
        create_exclusive(path, text.encode())
    except FileExistsError:
        raise ConfigError(f"{path} already exists; init never overwrites") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
    console.out(f"created {path} (mode 0600) with account {name!r}; check it with: exmo-proxy check")


def account_add(path: Path, name: str, sources: PassphraseSources, console: Console) -> None:
    check_name(name, "account name")
    edit = open_editable(path)
    if name in edit.doc["accounts"]:
        raise ConfigError(f"accounts.{name}: already exists (use `exmo-proxy account set-secret {name}`)")
    data_key = unlock_for_edit(edit, sources)
    key = _read_key(console)
    token = encryption.encrypt_value(data_key, secret_path(name), console.read_secret().reveal())
    expected = copy.deepcopy(edit.doc)
    expected["accounts"][name] = {"key": key, "secret": token}
    text = yamlfile.append_child(edit.text, ("accounts",), account_lines(name, key, token))
    keep = _implicit_default(edit.doc)
    if keep is not None and text is not None:
        # With one account it was the implicit default; with two, requests naming no account would
        # start failing (400). Make the old behaviour explicit instead of breaking running bots.
        expected = {"default_account": keep, **expected}
        text = yamlfile.insert_top_level(text, f"default_account: {keep}")
    save_edit(edit, text, expected, console)
    console.out(f"added account {name!r} to {path}")
    if keep is not None:
        console.out(f"default_account: {keep} (requests that name no account still go there)")


def _implicit_default(doc: dict[str, Any]) -> str | None:
    accounts = doc.get("accounts") or {}
    if doc.get("default_account") is None and len(accounts) == 1:
        return str(next(iter(accounts)))
    return None


def account_remove(path: Path, name: str, console: Console) -> None:
    edit = open_editable(path)
    accounts = edit.doc["accounts"]
    if name not in accounts:
        raise ConfigError(f"accounts.{name}: no such account")
    if len(accounts) == 1:
        raise ConfigError(f"accounts.{name}: it is the only account; a config needs at least one")
    if edit.doc.get("default_account") == name:
        raise ConfigError(f"default_account is {name!r}; point it at another account first")
    remove_entry(edit, "accounts", name, console)
    console.out(f"removed account {name!r} from {path}")


def account_list(path: Path, console: Console) -> None:
    document = validate(yamlfile.read_document(path), path)
    for account in document.accounts:
        flags = ["default"] if account.name == document.default_account else []
        rules = account.policy
        if rules.allow_withdrawals:
            flags.append("withdrawals allowed")
        if rules.read_only:
            flags.append("read-only")
        if rules.allow is not None:
            flags.append("allow: " + ",".join(sorted(rules.allow)))
        console.out(f"{account.name}\t{account.key}\t{'; '.join(flags)}".rstrip())


def account_set_secret(path: Path, name: str, new_key: str | None, sources: PassphraseSources,
                       console: Console) -> None:
    edit = open_editable(path, tolerate_plaintext=name)
    if name not in edit.doc["accounts"]:
        raise ConfigError(f"accounts.{name}: no such account (use `exmo-proxy account add {name}`)")
    probe = copy.deepcopy(edit.doc)
    probe["accounts"][name]["secret"] = encryption.VALUE_PREFIX + "placeholder"
    data_key = unlock_data_key(validate(probe, path), sources.get())
    token = encryption.encrypt_value(data_key, secret_path(name), console.read_secret().reveal())
    expected = copy.deepcopy(edit.doc)
    entry = expected["accounts"][name]
    entry["secret"] = token
    text: str | None = edit.text
    if new_key is not None:
        entry["key"] = check_api_key(new_key, "--key")
        text = yamlfile.replace_block(edit.text, ("accounts", name, "key"), [f"    key: {new_key}"])
    if text is not None:
        pad = " " * indent_of(text, ("accounts", name, "secret"))
        text = yamlfile.replace_block(text, ("accounts", name, "secret"), [f'{pad}secret: "{token}"'])
    save_edit(edit, text, expected, console)
    console.out(f"stored a new secret for account {name!r} in {path}")


def _account_summary(account: Account, default: str | None, console: Console) -> None:
    marker = " (default)" if account.name == default else ""
    console.out(f"  account {account.name}{marker}: key {account.key}, secret decrypts")
    rules = account.policy
    money_out = "allowed" if rules.allow_withdrawals else "locked"
    allowed = ", ".join(sorted(rules.allow)) if rules.allow is not None else "all methods"
    reads = " (read-only)" if rules.read_only else ""
    console.out(f"    may call: {allowed}{reads}; withdrawals: {money_out}")
    for name in sorted(rules.allow or ()):
        if not (is_known_private(name) or is_public(name)):
            console.warn(f"warning: accounts.{account.name}.allow: {name!r} is not a known EXMO method")


def check(path: Path, sources: PassphraseSources, overrides: dict[str, str], console: Console) -> None:
    config = load_config(path, sources, overrides)
    console.out(f"config OK: {path}")
    console.out(f"  listen: {config.listen.url()}  upstream: {config.upstream}")
    console.out(f"  state_dir: {config.state_dir}")
    if config.default_account is None:
        console.out("  default_account: none (requests must name an account)")
    for account in config.accounts.values():
        _account_summary(account, config.default_account, console)
    if config.redis is not None:
        problem = asyncio.run(_redis_problem(config.redis))
        if problem is not None:
            raise ConfigError(f"redis: {problem}; a daemon would refuse signed calls until it answers")
        console.out(f"  redis: {config.redis.where} answers (several daemons share nonces, rate limit,"
                    " halt switch)")


async def _redis_problem(settings: RedisSettings) -> str | None:
    from proxy.coord.client import connected  # redis-py: loaded by the commands that use it

    async with connected(settings) as coordinator:
        return coordinator.problem
