"""The audit log file: one JSON line per signed call in `state_dir/audit.jsonl` (SPEC §7), rotated.

What an entry holds is entry.py's business; this module writes lines, rotates files and repairs a
torn tail.

Durability, and why there is no fsync per call:

- Each entry is one `os.write` of one whole line on an O_APPEND descriptor. Once write() returns the
  bytes are in the kernel's page cache, which belongs to the kernel, not to us: a kill -9 (or an OOM
  kill, or a crash of the interpreter) after that cannot lose them. Record before answering the client
  and every answered call has its complete line; an fsync per call would add a disk flush (milliseconds)
  to every call on the key's ordered path (calls/nonce.py) for no gain against a killed process.
- A kill -9 landing *during* write() can still cut it at a page boundary: Linux copies page by page and
  stops at a fatal signal (mm/filemap.c `generic_perform_write`). That call was never answered, and
  `open()` moves such a torn last line aside to `audit.jsonl.torn`, so the file stays valid JSON lines.
- A power loss or kernel crash loses what was still only in the page cache: up to the last ~30 s of
  lines (Linux writes dirty pages back after `vm.dirty_expire_centisecs`, 3000 by default), and on some
  file systems the tail comes back as zeros; `open()` moves that aside too, and readers skip bad lines.
  Where that matters, `audit.fsync: true` flushes every entry to disk before the answer; its price per
  call is measured in bench/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proxy.config.sections import AuditSettings
from proxy.exmo.refusals import Refusal

log = logging.getLogger(__name__)

FILE_NAME = "audit.jsonl"
DEFAULTS = AuditSettings()
TORN_SUFFIX = ".torn"
_CHUNK = 64 * 1024
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # made once, not per line


class AuditError(Refusal):
    """An entry could not be written (full or read-only disk); the caller decides what that means."""

    status, slug = 503, "audit_unwritable"

    def explain(self) -> str:
        return f"the audit log cannot be written ({self}); refusing to sign"


class AuditLog:
    """The append-only file; `open()` before `record()`, `close()` at shutdown."""

    def __init__(self, state_dir: Path, settings: AuditSettings = DEFAULTS) -> None:
        self.path = state_dir / FILE_NAME
        self.settings = settings
        self._fd: int | None = None
        self._size = 0
        self._torn = False  # a failed write could not be rolled back; repair before the next one
        self._lock = threading.Lock()

    def open(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _repair_tail(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.fchmod(fd, 0o600)  # the umask, or an older file, must not widen who can read it
        except OSError as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc.strerror or exc}") from None
        self.close()
        self._fd, self._torn = fd, False
        self._size = os.fstat(fd).st_size  # then counted per write: no fstat on the hot path

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, entry: Mapping[str, Any]) -> None:
        """Append `entry` as one line with one write; AuditError if any of it did not land."""
        line = (_ENCODER.encode(entry) + "\n").encode()
        with self._lock:
            fd = self._ready(len(line))
            written = 0
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, f"short write, {written} of {len(line)} bytes; disk full?")
                if self.settings.fsync:
                    os.fsync(fd)
            except OSError as exc:
                self._roll_back(fd, written)
                raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror or exc};"
                                 " the entry is not recorded") from None
            self._size += written

    def _ready(self, size: int) -> int:
        """The descriptor to write `size` bytes to, rotated first if need be."""
        if self._fd is None:
            raise AuditError(f"the audit log {self.path} is not open")
        if self._torn:
            self.open()
        if self._size and self._size + size > self.settings.max_bytes:
            self._size = os.fstat(self._fd).st_size  # the file decides, not the count
            if self._size and self._size + size > self.settings.max_bytes:
                self._rotate()
        return self._fd

    def _roll_back(self, fd: int, written: int) -> None:
        """Cut the part of a line that did land off again, so the next entry does not start in the
        middle of one (a write that raised wrote nothing)."""
        if not written:
            return
        try:
            os.ftruncate(fd, os.fstat(fd).st_size - written)  # one writer: state_dir is locked
        except OSError:
            self._torn = True

    def _rotate(self) -> None:
        try:
            for number in range(self.settings.keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(rotated_path(self.path, number), rotated_path(self.path, number + 1))
            if self.settings.keep > 0:
                os.replace(self.path, rotated_path(self.path, 1))
            else:
                os.unlink(self.path)
        except OSError as exc:
            raise AuditError(f"cannot rotate the audit log {self.path}: {exc.strerror or exc}") from None
        self.open()


def rotated_path(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def _repair_tail(path: Path) -> None:
    """Move a last line without its newline (a write cut by a crash) to `<path>.torn`; keep the rest."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        cut = _after_last_newline(fd, size)
        fragment = os.pread(fd, size - cut, cut)
        torn = os.open(path.with_name(path.name + TORN_SUFFIX),
                       os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(torn, fragment + b"\n")
            os.fsync(torn)  # the evidence is safe before it leaves the log
        finally:
            os.close(torn)
        os.ftruncate(fd, cut)
        log.warning("audit log %s ended in a torn line (%d bytes); moved it to %s%s",
                    path, size - cut, path.name, TORN_SUFFIX)
    finally:
        os.close(fd)


def _after_last_newline(fd: int, size: int) -> int:
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        at = os.pread(fd, end - start, start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0
