"""Writing a private call's outcome to the audit log, before its answer goes back to the client.

`AuditTrail.call(...)` is a context manager around the policy checks and the dispatch of one private
call: it learns the nonce when the call is signed and, on the way out, writes one entry saying what
happened — answered (with EXMO's result and error code), refused by a rule, sent with an unknown
outcome, or signed but not sent. Calls dropped before signing (rate limit, client gone, shutdown)
have nothing to audit.

A failed write (full disk, failed rotation) keeps the entry it could not write. Before the next
private call is signed, that entry is written again (marked `"late": true`): only a write that
really succeeds proves the log works again, so while the disk stays full every call is refused (503)
instead of being traded without a record, and once it works no entry is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.audit import AuditError, AuditLog, AuditSettings, build_entry, exmo_outcome
from proxy.inbound import Params
from proxy.policy import PolicyDenied
from proxy.upstream import UpstreamError, UpstreamResponse

log = logging.getLogger(__name__)


@dataclass
class CallRecord:
    """What one call did; filled in as it travels."""

    request_id: str
    client: str | None
    account: str
    method: str
    params: Params
    started: float = field(default_factory=time.monotonic)
    nonce: int | None = None
    response: UpstreamResponse | None = None

    def signed(self, nonce: int) -> None:
        self.nonce = nonce


class AuditTrail:
    def __init__(self, state_dir: Path, settings: AuditSettings) -> None:
        self.log = AuditLog(state_dir, settings)
        self.settings = settings
        self.unwritten: dict[str, Any] | None = None

    def open(self) -> None:
        self.log.open()

    def close(self) -> None:
        self.log.close()

    def ensure_writable(self) -> None:
        """Raise AuditError unless the log took its last entry (the caller then refuses to sign)."""
        if self.unwritten is None:
            return
        self.log.open()
        self.log.record({**self.unwritten, "late": True})
        self.unwritten = None
        log.warning("audit log writable again; the entry that failed was written late")

    @contextmanager
    def call(self, record: CallRecord) -> Iterator[CallRecord]:
        self.ensure_writable()
        try:
            yield record
        except PolicyDenied:
            self._write(record, "refused", 403)
            raise
        except UpstreamError as exc:
            if record.nonce is not None:
                self._write(record, "unknown" if exc.sent else "not_sent", exc.status)
            raise
        except BaseException as exc:
            # A signed call that ends any other way still leaves its line: e.g. its 40009 retry was
            # refused before sending (rate limit, shutdown), or the daemon was cancelled mid-call.
            if record.nonce is not None:
                self._write(record, "not_sent" if isinstance(exc, Exception) else "interrupted",
                            getattr(exc, "status", 503))
            raise
        if record.response is not None:
            self._write(record, "answered", record.response.status)

    def _write(self, record: CallRecord, outcome: str, status: int) -> None:
        result, code = exmo_outcome(status, record.response.body) if record.response else (None, None)
        entry = build_entry(
            request_id=record.request_id, client=record.client, account=record.account,
            method=record.method, params=record.params, nonce=record.nonce, http_status=status,
            exmo_result=result, exmo_error_code=code, outcome=outcome, settings=self.settings,
            latency_ms=(time.monotonic() - record.started) * 1000,
        )
        try:
            self.log.record(entry)
        except Exception as exc:
            self.unwritten = entry
            log.error("audit log write failed (%s); signing is refused until it can be written",
                      exc if isinstance(exc, AuditError) else type(exc).__name__)
