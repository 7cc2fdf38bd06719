"""`exmo-proxy redis password`: seal the Redis password into the config (SPEC §10).

Like an API secret: read from the console (never echoed) or the next stdin line with --from-stdin,
sealed under the config's data key at `redis.password`, and the file edited in place (editing.py).
The password is then never plaintext in the file, argv or the environment.
"""

from __future__ import annotations

import copy
from pathlib import Path

from proxy.cli.console import Console
from proxy.cli.editing import indent_of, open_editable, save_edit, unlock_for_edit
from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.coordination import SEALED_AT
from proxy.vault import encryption
from proxy.vault.passphrase import PassphraseSources


def redis_password(path: Path, sources: PassphraseSources, console: Console) -> None:
    edit = open_editable(path)
    section = edit.doc.get("redis")
    if not isinstance(section, dict):
        raise ConfigError("redis: not in the config; add `redis: {url: redis://HOST:6379/0}` first")
    if section.get("password_file") is not None:
        raise ConfigError("redis.password_file is set; remove it first (the password comes from one place)")
    data_key = unlock_for_edit(edit, sources)
    token = encryption.encrypt_value(data_key, SEALED_AT, console.read_hidden("Redis password").reveal())
    expected = copy.deepcopy(edit.doc)
    expected["redis"]["password"] = token
    line = f'password: "{token}"'
    text: str | None
    if "password" in section:
        pad = " " * indent_of(edit.text, ("redis", "password"))
        text = yamlfile.replace_block(edit.text, ("redis", "password"), [pad + line])
    else:
        text = yamlfile.append_child(edit.text, ("redis",), [line])
    save_edit(edit, text, expected, console)
    console.out(f"stored the Redis password sealed in {path} (redis.password); restart the daemons to use it")
