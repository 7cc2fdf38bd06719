"""`exmo-proxy passphrase change`: a new passphrase re-wraps the data key; secret values stay as they are."""

from __future__ import annotations

import copy
from pathlib import Path

from proxy.cli.console import Console
from proxy.cli.editing import open_editable, save_edit
from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.load import unlock_data_key
from proxy.config.model import validate
from proxy.config.template import encryption_lines
from proxy.vault import encryption
from proxy.vault.passphrase import PassphraseSources


def passphrase_change(path: Path, sources: PassphraseSources, new_file: str | None,
                      console: Console) -> None:
    edit = open_editable(path)
    old = sources.get()
    data_key = unlock_data_key(validate(copy.deepcopy(edit.doc), edit.path), old)
    new = sources.replacement(new_file)
    if new.reveal() == old.reveal():
        raise ConfigError("the new passphrase is the same as the current one; nothing changed")
    kdf = encryption.KdfParams.fresh()
    lines = encryption_lines(kdf, encryption.wrap_data_key(data_key, new.encode(), kdf))
    expected = copy.deepcopy(edit.doc)
    expected["encryption"] = yamlfile.parse_yaml("\n".join(lines), "new header")["encryption"]
    save_edit(edit, yamlfile.replace_block(edit.text, ("encryption",), lines), expected, console)
    console.out(f"passphrase changed for {path}; secret values are unchanged")
