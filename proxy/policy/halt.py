"""The kill switch: `exmo-proxy halt on|off` for a running daemon, surviving restarts.

The switch is a small file in `state_dir` (written atomically, mode 0600), so the CLI needs no
connection to the daemon and a restart keeps it. The daemon looks for it (one stat) only when a call
is not a read or a cancel/close (exmo.methods.ALLOWED_WHILE_HALTED), so those are never slowed or
blocked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from proxy.durable import write_atomic
from proxy.exmo.methods import ALLOWED_WHILE_HALTED
from proxy.policy.rules import PolicyDenied

HALT_FILE = "halt.json"


def halt_path(state_dir: Path) -> Path:
    return state_dir / HALT_FILE


@functools.lru_cache(maxsize=8)
def _halt_file(state_dir: Path) -> str:
    return str(halt_path(state_dir))


def is_halted(state_dir: Path) -> bool:
    return os.path.exists(_halt_file(state_dir))  # one stat per trading call, no Path objects


def check(state_dir: Path, method: str, shared: Mapping[str, object] | None = None) -> None:
    """Raise PolicyDenied while halted — here (the file) or, in Redis mode, for every daemon (`shared`,
    the halt record read from Redis at most a second ago) — unless `method` is a read, a cancel or a
    close."""
    if method not in ALLOWED_WHILE_HALTED and (shared is not None or is_halted(state_dir)):
        raise PolicyDenied("halted", f"trading is halted: {method} is refused until `exmo-proxy halt"
                                     " off`; cancels, reads and balances still work")


def halt_info(state_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads(halt_path(state_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"reason": "(unreadable halt file: trading stays halted)"}
    return data if isinstance(data, dict) else {}


def set_halt(state_dir: Path, on: bool, reason: str = "") -> None:
    if on:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = {"since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reason": reason}
        write_atomic(halt_path(state_dir), json.dumps(payload).encode() + b"\n")
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(halt_path(state_dir))
        fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
