"""`exmo-proxy client add|remove|list`: bearer tokens for bots, scoped to accounts and methods.

`add` prints the new token once and stores only its SHA-256 (config/clients.py). Like the account
commands, edits change only their own lines and are written atomically with mode 0600.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from proxy.cli.console import Console
from proxy.cli.editing import open_editable, remove_entry, save_edit
from proxy.config import clients, yamlfile
from proxy.config.checks import ConfigError, check_name
from proxy.config.model import validate


def _client_lines(name: str, digest: str, accounts: Sequence[str], allow: Sequence[str]) -> list[str]:
    lines = [f"{name}:", f"  token_sha256: {digest}", f"  accounts: [{', '.join(accounts)}]"]
    if allow:
        lines.append(f"  allow: [{', '.join(allow)}]")
    return lines


def client_add(path: Path, name: str, accounts: Sequence[str], allow: Sequence[str],
               console: Console) -> None:
    check_name(name, "client name")
    edit = open_editable(path)
    existing = edit.doc.get("clients") or {}
    if name in existing:
        raise ConfigError(f"clients.{name}: already exists (remove it first to issue a new token)")
    token = clients.new_token()
    digest = clients.token_hash(token)
    expected = copy.deepcopy(edit.doc)
    entry: dict[str, object] = {"token_sha256": digest, "accounts": list(accounts)}
    if allow:
        entry["allow"] = list(allow)
    expected["clients"] = {**existing, name: entry}
    validate(copy.deepcopy(expected), path)  # unknown accounts, bad method names: refused here
    lines = _client_lines(name, digest, accounts, allow)
    if yamlfile.find_block(edit.text.splitlines(), ("clients",)) is not None:
        text = yamlfile.append_child(edit.text, ("clients",), lines)
    else:
        block = ["clients:", *("  " + ln for ln in lines)]
        text = yamlfile.insert_block_before(edit.text, "encryption", block)
    save_edit(edit, text, expected, console)
    console.out(f"added client {name!r} (accounts: {', '.join(accounts)}). Its token, shown only now:")
    console.out(token)
    if not existing:
        console.warn("note: with a client configured, every request needs Authorization: Bearer <token>")


def client_remove(path: Path, name: str, console: Console) -> None:
    edit = open_editable(path)
    existing = edit.doc.get("clients") or {}
    if name not in existing:
        raise ConfigError(f"clients.{name}: no such client")
    remove_entry(edit, "clients", name, console)
    console.out(f"removed client {name!r}; its token stops working when the daemon reloads (SIGHUP)"
                " or restarts")


def client_list(path: Path, console: Console) -> None:
    document = validate(yamlfile.read_document(path), path)
    if not document.clients:
        console.out("no clients: any local program may use every account (loopback only)")
    for client in document.clients.values():
        allow = ", ".join(sorted(client.allow)) if client.allow is not None else "all but money-out"
        console.out(f"{client.name}\taccounts: {', '.join(sorted(client.accounts))}\tallow: {allow}")
