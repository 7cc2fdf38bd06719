"""Durable, atomic file writes: config edits and nonce state never end up torn or lost.

A write goes to a temporary file in the same directory, is fsynced, renamed over the target and the
directory is fsynced, so after a crash (kill -9, power loss) the target holds either the old or the new
content. If anything fails (a full disk, a read-only mount) the temporary file is removed and the old
content is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_MODE = 0o600


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what we ask for
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` atomically and durably, with permissions `mode`."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Create `path` with `data` durably; FileExistsError if it exists (never overwrites)."""
    tmp = _write_temp(path, data, mode)
    try:
        os.link(tmp, path)  # link() refuses an existing target, unlike rename()
    finally:
        _unlink_quietly(tmp)
    _fsync_dir(path.parent)
