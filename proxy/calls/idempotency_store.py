"""Idempotency records: in memory, and in an append-only journal in `state_dir` that outlives the process.

One record per (account, Idempotency-Key): the call's fingerprint (method and parameters), when it was
first seen, and, once known, the answer to give every retry. A record is written *pending* before its
call is signed and *done* when the answer is known, each as one `write()` of one JSON line on an
O_APPEND descriptor, so once written it survives a kill -9 of the daemon (the bytes belong to the
kernel's page cache, as for the audit log, audit/log.py). No fsync per call: a power loss can lose the
last seconds of records, and the price of an fsync per call is in bench/RESULTS.md (`audit.fsync`).
A pending record found at start-up means the daemon stopped between signing and the answer: its
outcome is unknown, and it is never sent again (idempotency.py).

The journal is rewritten (atomically, fsynced) at start-up and when it has grown to several times what
is still live; lines cut by a crash are skipped. Records expire `ttl_s` after their call arrived, and
the store is bounded: past MAX_RECORDS records or MAX_BODY_BYTES of kept answers the oldest finished
records are dropped first (a retry of a dropped key is then treated as a new call).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.durable import write_atomic
from proxy.exmo.refusals import Refusal

log = logging.getLogger(__name__)

FILE_NAME = "idempotency.jsonl"
MAX_RECORDS = 100_000
MAX_BODY_BYTES = 64 * 1024 * 1024
COMPACT_FROM_BYTES = 4 * 1024 * 1024  # and at least 4x the live records' size


class StoreUnwritable(Refusal):
    """A pending record could not be written: the call is refused, not sent (no record, no guarantee)."""

    status, slug = 503, "idempotency_unwritable"

    def explain(self) -> str:
        return f"{self}; the request was not sent, so it is safe to retry"


@dataclass(frozen=True)
class Answer:
    """What a retry gets: the first call's status, body and content type, byte for byte."""

    status: int
    body: bytes
    content_type: str


@dataclass
class Record:
    fingerprint: str
    created: float  # wall-clock seconds: records outlive the process
    answer: Answer | None = None  # None: pending, the call's outcome is not known yet
    owner: str = ""  # Redis mode (records.py): the daemon whose call it is
    busy_until: float = 0.0  # Redis mode: until when that daemon may still be waiting for EXMO


class IdempotencyStore:
    def __init__(self, state_dir: Path, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / FILE_NAME
        self.ttl_s = ttl_s
        self._clock = clock
        self._records: dict[str, Record] = {}  # insertion order is arrival order: oldest first
        self._body_bytes = 0
        self._fd: int | None = None
        self._journal_bytes = 0

    # --- life cycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Read the journal (skipping torn or damaged lines), drop what expired, rewrite it compactly."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as journal:
            for line in journal:
                self._replay(line)
        self._expire()
        self._make_room(records=0, body_bytes=0)
        self._compact()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def reconfigure(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s

    # --- the records ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def get(self, scope: str) -> Record | None:
        record = self._records.get(scope)
        if record is not None and record.created + self.ttl_s <= self._clock():
            self._drop(scope)
            return None
        return record

    def begin(self, scope: str, fingerprint: str) -> None:
        """A new call under `scope`: recorded pending, durably (against kill -9), before it is signed."""
        self._expire()
        self._make_room(records=1, body_bytes=0)
        record = self._records[scope] = Record(fingerprint, self._clock())  # before the line: a
        try:  # compaction the line triggers rewrites the journal from the records, this one included
            self._append(_line(scope, record))
        except StoreUnwritable:
            del self._records[scope]
            raise

    def complete(self, scope: str, answer: Answer) -> None:
        """The call's answer is known. If the line cannot be written the answer is still served from
        memory; after a restart the record would be pending, so a retry gets "outcome unknown"."""
        record = self._records.get(scope)
        if record is None:
            return
        self._make_room(records=0, body_bytes=len(answer.body))
        record.answer = answer
        self._body_bytes += len(answer.body)
        try:
            self._append(_line(scope, record))
        except StoreUnwritable as exc:
            log.error("idempotency record for a finished call not written (%s); kept in memory", exc)

    def release(self, scope: str) -> None:
        """The call was not sent: forget it, so that a retry is a new call."""
        if scope in self._records:
            self._drop(scope)
            with contextlib.suppress(StoreUnwritable):  # a pending line left behind errs on the safe side
                self._append(json.dumps({"s": scope, "e": "drop"}) + "\n")

    # --- inside ---------------------------------------------------------------------------------

    def _replay(self, line: bytes) -> None:
        try:
            entry: Any = json.loads(line)
            scope, event = entry["s"], entry["e"]
            if event == "drop":
                self._drop(scope)
                return
            record = Record(str(entry["f"]), float(entry["t"]))
            if event == "done":
                record.answer = Answer(int(entry["st"]), base64.b64decode(entry["b"]), str(entry["ct"]))
        except (ValueError, KeyError, TypeError, RecursionError):
            return  # a line cut by a crash, or damaged: skipped
        if record.answer is None:
            self._drop(scope)  # a new call under this scope: last, as it arrived
        elif (old := self._records.get(scope)) is not None and old.answer is not None:
            self._body_bytes -= len(old.answer.body)
        self._records[scope] = record  # a done line finishes its record where it stands (arrival order)
        self._body_bytes += len(record.answer.body) if record.answer else 0

    def _drop(self, scope: str) -> None:
        record = self._records.pop(scope, None)
        if record is not None and record.answer is not None:
            self._body_bytes -= len(record.answer.body)

    def _expire(self) -> None:
        """Drop what expired: the oldest records first, so stop at the first one still alive. (A call in
        flight is never this old: the TTL is at least an hour, a call's patience and timeout at most
        twenty minutes.)"""
        cutoff = self._clock() - self.ttl_s
        expired = []
        for scope, record in self._records.items():
            if record.created > cutoff:
                break
            expired.append(scope)
        for scope in expired:
            self._drop(scope)

    def _make_room(self, *, records: int, body_bytes: int) -> None:
        """Drop the oldest finished records (pending ones are in flight) until `records` more records
        and `body_bytes` more of answers fit."""
        def full() -> bool:
            return (len(self._records) + records > MAX_RECORDS
                    or self._body_bytes + body_bytes > MAX_BODY_BYTES)

        if not full():
            return
        for scope in [s for s, r in self._records.items() if r.answer is not None]:
            self._drop(scope)
            log.warning("idempotency store full: dropped the oldest record to make room")
            if not full():
                break

    def _append(self, text: str) -> None:
        line = text.encode()
        if self._fd is None:
            raise StoreUnwritable(f"the idempotency journal {self.path} is not open")
        written = 0
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write, {written} of {len(line)} bytes; disk full?")
        except OSError as exc:
            if written:  # cut off what landed, so the next line does not start inside this one
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._journal_bytes)
            raise StoreUnwritable(f"cannot write the idempotency journal {self.path}:"
                                  f" {getattr(exc, 'strerror', None) or exc}") from None
        self._journal_bytes += written
        if self._journal_bytes > max(COMPACT_FROM_BYTES, 4 * self._live_bytes()):
            self._compact()

    def _live_bytes(self) -> int:
        return self._body_bytes * 4 // 3 + 160 * len(self._records)

    def _compact(self) -> None:
        """Rewrite the journal with only the live records (atomically: old or new, never half)."""
        data = "".join(_line(scope, record) for scope, record in self._records.items()).encode()
        try:
            write_atomic(self.path, data)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            if self._fd is None:
                raise StoreUnwritable(f"cannot write the idempotency journal {self.path}:"
                                      f" {exc.strerror or exc}") from None
            log.error("idempotency journal not compacted (%s); it keeps growing", exc.strerror or exc)
            return
        self.close()
        self._fd, self._journal_bytes = fd, len(data)


def _line(scope: str, record: Record) -> str:
    """The journal line of a record as it stands: pending, or done with its answer."""
    entry: dict[str, Any] = {"s": scope, "e": "pending", "f": record.fingerprint, "t": record.created}
    if record.answer is not None:
        entry.update(e="done", st=record.answer.status, ct=record.answer.content_type,
                     b=base64.b64encode(record.answer.body).decode("ascii"))
    return json.dumps(entry, separators=(",", ":")) + "\n"
