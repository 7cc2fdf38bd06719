"""Where a key's nonce ceiling is kept: one small JSON file per API key in `state_dir/nonces/`.

Written atomically and fsynced (durable.py), never lowered, and the directory locked for the life of
the process. nonce.py decides what to write and when; this module only keeps it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path

from proxy.durable import write_atomic
from proxy.exmo.refusals import Refusal

MAX_NONCE = 2**63 - 1  # EXMO accepts 19-digit UnixNano nonces (§3); stay below int64


class NonceStateError(Refusal):
    """The nonce state cannot be read or made durable; signing must stop."""

    status, slug = 503, "state_unwritable"

    def explain(self) -> str:
        return f"{self}; refusing to sign"


class NonceExhausted(NonceStateError):
    """EXMO's counter for this key is at the top of the int64 range: only a new key helps."""

    slug = "nonce_exhausted"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def key_id(api_key: str) -> str:
    """A stable file-name-safe id for an API key (the key itself stays out of file names)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class NonceStore:
    """One small JSON file per key in `state_dir/nonces/`, written atomically.

    The directory is locked (flock) for the life of the process: two daemons sharing one state_dir
    would overwrite each other's ceilings. Saves are serialised and never lower a ceiling, even if
    an abandoned save thread finishes after a newer one.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "nonces"
        self._saving = threading.Lock()
        self._saved: dict[str, int] = {}
        self.last_error: str | None = None  # the latest failed save, until a save succeeds (readyz)
        self._lock_fd: int | None = None

    def prepare(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise NonceStateError(f"cannot create {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise NonceStateError(
                f"another exmo-proxy is using {self.directory.parent}; give each daemon its own state_dir"
            ) from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _path(self, kid: str) -> Path:
        return self.directory / f"{kid}.json"

    def load(self, kid: str) -> int:
        try:
            data = json.loads(self._path(kid).read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise NonceStateError(f"cannot read nonce state {self._path(kid)}: {exc}") from None
        ceiling = data.get("ceiling") if isinstance(data, dict) else None
        if isinstance(ceiling, bool) or not isinstance(ceiling, int) or not 0 <= ceiling <= MAX_NONCE:
            raise NonceStateError(f"nonce state {self._path(kid)} is malformed; it holds no ceiling")
        return ceiling

    def save(self, kid: str, ceiling: int) -> None:
        with self._saving:
            ceiling = max(ceiling, self._saved.get(kid, 0))
            payload = json.dumps({"ceiling": ceiling, "saved_at_ms": wall_clock_ms()}).encode()
            try:
                write_atomic(self._path(kid), payload + b"\n")
            except OSError as exc:
                self.last_error = f"cannot persist nonce state: {exc.strerror or exc}"
                raise NonceStateError(self.last_error) from None
            self._saved[kid] = ceiling
            self.last_error = None


def in_use(state_dir: Path) -> bool:
    """Whether a running daemon holds this state_dir (its lock), as the CLI's halt wants to know."""
    try:
        fd = os.open(state_dir / "nonces" / ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
