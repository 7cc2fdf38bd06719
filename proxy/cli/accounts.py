"""Config management commands: init, account add/remove/list/set-secret, passphrase change, check.

Each edit changes only the lines it must (comments and key order stay, see yamlfile.py), checks
that the result validates, and replaces the file atomically with mode 0600.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy import policy, vault, yamlfile
from proxy.config import (
    DEFAULT_LISTEN,
    DEFAULT_UPSTREAM,
    Account,
    ConfigError,
    check_api_key,
    check_name,
    load_config,
    unlock_data_key,
    validate,
)
from proxy.console import Console
from proxy.credentials import PassphraseSources, Secret
from proxy.durable import create_exclusive, write_atomic


def _secret_path(name: str) -> str:
    return f"accounts.{name}.secret"


def _read_key(console: Console) -> str:
    key = check_api_key(console.read_key(), "API key")
    if key.startswith("S-"):
        raise ConfigError("API key: that looks like the secret (S-...); the public key starts with K-")
    return key


def _account_lines(name: str, key: str, token: str) -> list[str]:
    return [f"{name}:", f"  key: {key}", f'  secret: "{token}"']


def _encryption_lines(kdf: vault.KdfParams, wrapped: str) -> list[str]:
    salt = vault.b64encode(kdf.salt)
    return [
        "encryption:  # written by exmo-proxy: format version, Argon2id parameters, wrapped data key",
        f"  version: {vault.FORMAT_VERSION}",
        f'  kdf: {{alg: argon2id, m: {kdf.m}, t: {kdf.t}, p: {kdf.p}, salt: "{salt}"}}',
        f'  wrapped_key: "{wrapped}"',
    ]


def render_new_config(name: str, key: str, token: str, kdf: vault.KdfParams, wrapped: str,
                      state_dir: str | None = None) -> str:
    lines = [
        "# exmo-signing-proxy config, written by `exmo-proxy init`. Every key: config.example.yaml.",
        f"listen: {DEFAULT_LISTEN}            # or unix:/run/exmo-proxy/proxy.sock",
        f"upstream: {DEFAULT_UPSTREAM}",
        *([f"state_dir: {state_dir}   # nonce state; relative to this file"] if state_dir else [
            "# state_dir: /var/lib/exmo-proxy   # nonce state. Default: $STATE_DIRECTORY (systemd),"
            " else exmo-proxy-state/ beside this file"]),
        "accounts:",
        *("  " + line for line in _account_lines(name, key, token)),
        "limits:",
        "  rate_per_second: 10          # EXMO: 10 requests/s per IP or user",
        "  upstream_timeout_s: 15",
        *_encryption_lines(kdf, wrapped),
    ]
    return "\n".join(lines) + "\n"


def new_config_text(name: str, key: str, secret: Secret, passphrase: Secret,
                    state_dir: str | None = None) -> str:
    data_key = vault.new_data_key()
    kdf = vault.KdfParams.fresh()
    wrapped = vault.wrap_data_key(data_key, passphrase.encode(), kdf)
    token = vault.encrypt_value(data_key, _secret_path(name), secret.reveal())
    return render_new_config(name, key, token, kdf, wrapped, state_dir)


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


@dataclass
class Editable:
    path: Path
    text: str
    doc: dict[str, Any]


def open_editable(path: Path, tolerate_plaintext: str | None = None) -> Editable:
    text = yamlfile.load_text(path)
    doc = yamlfile.parse_yaml(text, str(path))
    probe = copy.deepcopy(doc)
    accounts = probe.get("accounts")
    target = accounts.get(tolerate_plaintext) if tolerate_plaintext and isinstance(accounts, dict) else None
    if isinstance(target, dict):
        target["secret"] = vault.VALUE_PREFIX + "placeholder"
    validate(probe, path)
    return Editable(path, text, doc)


def save_edit(edit: Editable, new_text: str | None, expected: dict[str, Any], console: Console) -> None:
    validate(copy.deepcopy(expected), edit.path)
    text, kept = yamlfile.verified_edit(new_text, expected)
    if not kept:
        console.warn(f"warning: {edit.path} uses YAML this tool cannot edit in place; rewrote it plainly")
    try:
        write_atomic(edit.path, text.encode())
    except OSError as exc:
        raise ConfigError(f"{edit.path}: cannot write (unchanged): {exc.strerror}") from None


def _data_key(edit: Editable, sources: PassphraseSources) -> bytes:
    return unlock_data_key(validate(copy.deepcopy(edit.doc), edit.path), sources.get())


def account_add(path: Path, name: str, sources: PassphraseSources, console: Console) -> None:
    check_name(name, "account name")
    edit = open_editable(path)
    if name in edit.doc["accounts"]:
        raise ConfigError(f"accounts.{name}: already exists (use `exmo-proxy account set-secret {name}`)")
    data_key = _data_key(edit, sources)
    key = _read_key(console)
    token = vault.encrypt_value(data_key, _secret_path(name), console.read_secret().reveal())
    expected = copy.deepcopy(edit.doc)
    expected["accounts"][name] = {"key": key, "secret": token}
    text = yamlfile.append_child(edit.text, ("accounts",), _account_lines(name, key, token))
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


def remove_entry(edit: Editable, section: str, name: str, console: Console) -> None:
    """Delete `section.name` from the file, keeping every other line as it was."""
    expected = copy.deepcopy(edit.doc)
    del expected[section][name]
    save_edit(edit, yamlfile.delete_block(edit.text, (section, name)), expected, console)


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
    probe["accounts"][name]["secret"] = vault.VALUE_PREFIX + "placeholder"
    data_key = unlock_data_key(validate(probe, path), sources.get())
    token = vault.encrypt_value(data_key, _secret_path(name), console.read_secret().reveal())
    expected = copy.deepcopy(edit.doc)
    entry = expected["accounts"][name]
    entry["secret"] = token
    text: str | None = edit.text
    if new_key is not None:
        entry["key"] = check_api_key(new_key, "--key")
        text = yamlfile.replace_block(edit.text, ("accounts", name, "key"), [f"    key: {new_key}"])
    if text is not None:
        pad = " " * _indent_of(text, ("accounts", name, "secret"))
        text = yamlfile.replace_block(text, ("accounts", name, "secret"), [f'{pad}secret: "{token}"'])
    save_edit(edit, text, expected, console)
    console.out(f"stored a new secret for account {name!r} in {path}")


def _indent_of(text: str, key_path: tuple[str, ...]) -> int:
    span = yamlfile.find_block(text.splitlines(), key_path)
    return span.indent if span else 4


def passphrase_change(path: Path, sources: PassphraseSources, new_file: str | None,
                      console: Console) -> None:
    edit = open_editable(path)
    old = sources.get()
    data_key = unlock_data_key(validate(copy.deepcopy(edit.doc), edit.path), old)
    new = sources.replacement(new_file)
    if new.reveal() == old.reveal():
        raise ConfigError("the new passphrase is the same as the current one; nothing changed")
    kdf = vault.KdfParams.fresh()
    lines = _encryption_lines(kdf, vault.wrap_data_key(data_key, new.encode(), kdf))
    expected = copy.deepcopy(edit.doc)
    expected["encryption"] = yamlfile.parse_yaml("\n".join(lines), "new header")["encryption"]
    save_edit(edit, yamlfile.replace_block(edit.text, ("encryption",), lines), expected, console)
    console.out(f"passphrase changed for {path}; secret values are unchanged")


def _account_summary(account: Account, default: str | None, console: Console) -> None:
    marker = " (default)" if account.name == default else ""
    console.out(f"  account {account.name}{marker}: key {account.key}, secret decrypts")
    rules = account.policy
    money_out = "allowed" if rules.allow_withdrawals else "locked"
    allowed = ", ".join(sorted(rules.allow)) if rules.allow is not None else "all methods"
    reads = " (read-only)" if rules.read_only else ""
    console.out(f"    may call: {allowed}{reads}; withdrawals: {money_out}")
    for name in sorted(rules.allow or ()):
        if not (policy.is_known_private(name) or policy.is_public(name)):
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
