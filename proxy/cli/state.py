"""Commands that act on a daemon's state_dir rather than its config: `halt` and `audit`.

Neither needs the passphrase (`halt` does, only to decrypt a Redis password sealed in the config).
They find the state_dir the way the daemon does (the config's
`state_dir`, else $STATE_DIRECTORY, else beside the config), or take `--state-dir` like `run`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.audit import read as auditread
from proxy.calls import nonce_store
from proxy.cli.console import Console
from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.coordination import RedisSettings
from proxy.config.load import open_redis_password
from proxy.config.model import Document, validate
from proxy.coord.keys import CoordinationUnavailable
from proxy.policy import halt
from proxy.vault.encryption import UnlockError, ValueAuthError
from proxy.vault.passphrase import PassphraseError, PassphraseSources

if TYPE_CHECKING:
    from proxy.coord.client import Coordinator


def resolve_state_dir(path: Path, override: str | None) -> Path:
    """The state_dir a daemon started with the same config (and --state-dir) uses."""
    if override:
        return Path(override).resolve()
    return validate(yamlfile.read_document(path), path).state_dir


def halt_command(path: Path, state: str, reason: str, state_dir: Path, sources: PassphraseSources,
                 console: Console) -> None:
    """`exmo-proxy halt on|off|status`: the flag lives in state_dir; a running daemon sees it at once.
    With `redis` in the config it is also written to Redis, where every daemon sees it within a second.
    This host's switch is set first: a passphrase or a Redis that fails never keeps it from stopping."""
    document = _document(path)
    shared = document.redis if document is not None else None
    if not nonce_store.in_use(state_dir) and shared is None:
        console.warn(f"warning: no running daemon uses {state_dir}; if yours runs with --state-dir or"
                     " $STATE_DIRECTORY, pass the same --state-dir here")
    if state in ("on", "off"):
        try:
            halt.set_halt(state_dir, state == "on", reason)
        except OSError as exc:
            raise ConfigError(f"{state_dir}: cannot write the halt switch: {exc.strerror}") from None
    info = halt.halt_info(state_dir)
    if document is not None and shared is not None:
        try:
            settings = open_redis_password(document, sources.get)
        except (ConfigError, PassphraseError, UnlockError, ValueAuthError) as exc:
            done = f"this host's switch is {state}; " if state in ("on", "off") else ""
            raise ConfigError(f"redis: {done}the Redis password could not be decrypted ({exc}), so the"
                              " other daemons' switch was not read or changed") from None
        info = asyncio.run(_shared_halt(settings, state, info)) or info
    if info is None:
        console.out(f"trading is ON ({state_dir}{' and ' + shared.where if shared else ''})")
    else:
        console.out(f"trading is HALTED since {info.get('since', '?')}: only reads, cancels and position"
                    f" closes are signed. {info.get('reason') or ''}".rstrip())


def _document(path: Path) -> Document | None:
    try:
        return validate(yamlfile.read_document(path), path)
    except ConfigError:
        return None  # no readable config: the local switch alone (the daemon may run from elsewhere)


async def _shared_halt(settings: RedisSettings, state: str, local: dict[str, Any] | None,
                       ) -> dict[str, Any] | None:
    """Write the switch to Redis (on/off) or read it (status); a Redis that does not answer is an error:
    the other daemons would not see the switch."""
    from proxy.coord.client import connected  # redis-py: loaded by the commands that use it

    try:
        async with connected(settings) as coordinator:
            return await _apply_halt(coordinator, state, local)
    except CoordinationUnavailable as exc:
        raise ConfigError(str(exc)) from None


async def _apply_halt(coordinator: Coordinator, state: str, local: dict[str, Any] | None,
                      ) -> dict[str, Any] | None:
    if coordinator.problem is not None:
        where = "; the other daemons cannot see the halt switch (this host's is set)"
        raise ConfigError(f"redis: {coordinator.problem}{where if state != 'status' else ''}")
    if state in ("on", "off"):
        await coordinator.set_halt(local if state == "on" else None)
    return coordinator.halted


def audit_command(state_dir: Path, action: str, options: dict[str, Any], console: Console) -> None:
    """`exmo-proxy audit tail|grep`: reads state_dir/audit.jsonl (and rotated files); no passphrase."""
    if action == "tail":
        entries: Iterable[dict[str, Any]] = auditread.tail(state_dir, max(1, options["n"]))
    else:
        filters = {k: options[k] for k in ("account", "method", "client", "text", "since")}
        entries = auditread.grep(state_dir, **filters)
    for entry in entries:
        console.out(json.dumps(entry) if options["json"] else auditread.format_entry(entry))
