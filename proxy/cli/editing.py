"""How commands edit the config file: validate before and after, keep comments, write atomically.

Each edit changes only the lines it must (comments and key order stay, see config/yamlfile.py),
checks that the result validates, and replaces the file atomically with mode 0600.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.cli.console import Console
from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.load import unlock_data_key
from proxy.config.model import validate
from proxy.durable import write_atomic
from proxy.vault.encryption import VALUE_PREFIX
from proxy.vault.passphrase import PassphraseSources


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
        target["secret"] = VALUE_PREFIX + "placeholder"
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


def unlock_for_edit(edit: Editable, sources: PassphraseSources) -> bytes:
    return unlock_data_key(validate(copy.deepcopy(edit.doc), edit.path), sources.get())


def indent_of(text: str, key_path: tuple[str, ...], default: int = 4) -> int:
    """How far the key at `key_path` is indented in `text`."""
    span = yamlfile.find_block(text.splitlines(), key_path)
    return span.indent if span else default


def remove_entry(edit: Editable, section: str, name: str, console: Console) -> None:
    """Delete `section.name` from the file, keeping every other line as it was."""
    expected = copy.deepcopy(edit.doc)
    del expected[section][name]
    save_edit(edit, yamlfile.delete_block(edit.text, (section, name)), expected, console)
