"""Commands that act on a daemon's state_dir rather than its config: `halt` and `audit`.

Neither needs the passphrase. They find the state_dir the way the daemon does (the config's
`state_dir`, else $STATE_DIRECTORY, else beside the config), or take `--state-dir` like `run`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from proxy.audit import read as auditread
from proxy.calls import nonce
from proxy.cli.console import Console
from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.model import validate
from proxy.policy import halt


def resolve_state_dir(path: Path, override: str | None) -> Path:
    """The state_dir a daemon started with the same config (and --state-dir) uses."""
    if override:
        return Path(override).resolve()
    return validate(yamlfile.read_document(path), path).state_dir


def halt_command(path: Path, state: str, reason: str, state_dir: Path, console: Console) -> None:
    """`exmo-proxy halt on|off|status`: the flag lives in state_dir; a running daemon sees it at once."""
    if not nonce.in_use(state_dir):
        console.warn(f"warning: no running daemon uses {state_dir}; if yours runs with --state-dir or"
                     " $STATE_DIRECTORY, pass the same --state-dir here")
    if state in ("on", "off"):
        try:
            halt.set_halt(state_dir, state == "on", reason)
        except OSError as exc:
            raise ConfigError(f"{state_dir}: cannot write the halt switch: {exc.strerror}") from None
    info = halt.halt_info(state_dir)
    if info is None:
        console.out(f"trading is ON ({state_dir})")
    else:
        console.out(f"trading is HALTED since {info.get('since', '?')}: only reads, cancels and position"
                    f" closes are signed. {info.get('reason') or ''}".rstrip())


def audit_command(state_dir: Path, action: str, options: dict[str, Any], console: Console) -> None:
    """`exmo-proxy audit tail|grep`: reads state_dir/audit.jsonl (and rotated files); no passphrase."""
    if action == "tail":
        entries: Iterable[dict[str, Any]] = auditread.tail(state_dir, max(1, options["n"]))
    else:
        filters = {k: options[k] for k in ("account", "method", "client", "text", "since")}
        entries = auditread.grep(state_dir, **filters)
    for entry in entries:
        console.out(json.dumps(entry) if options["json"] else auditread.format_entry(entry))
