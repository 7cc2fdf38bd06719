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
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from proxy.audit.entry import build_entry
from proxy.audit.log import AuditError, AuditLog
from proxy.config.sections import AuditSettings
from proxy.exmo.answers import outcome_of
from proxy.exmo.signing import Params
from proxy.policy.rules import PolicyDenied
from proxy.upstream.client import UpstreamError, UpstreamResponse

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
    replayed: bool = False  # the answer of an earlier call with the same Idempotency-Key, not sent
    paper: bool = False  # a paper account's call: answered from the paper ledger, not sent (SPEC §11)
    _exmo: tuple[bool | None, str | None] | None = None

    def signed(self, nonce: int) -> None:
        self.nonce = nonce

    def exmo(self) -> tuple[bool | None, str | None]:
        """EXMO's `result` and error code in the answer, read once (exmo/answers.py)."""
        if self.response is None:
            return None, None
        if self._exmo is None:
            self._exmo = outcome_of(self.response.doc)  # parsed once, when it was checked
        return self._exmo


class AuditTrail:
    def __init__(self, state_dir: Path, settings: AuditSettings) -> None:
        self.log = AuditLog(state_dir, settings)
        self.settings = settings
        self.unwritten: dict[str, Any] | None = None

    def open(self) -> None:
        self.log.open()

    def close(self) -> None:
        self.log.close()

    def reconfigure(self, settings: AuditSettings) -> None:
        """A reload's `audit:` section: redaction for the next entries, rotation for the next write."""
        self.settings = self.log.settings = settings

    def ensure_writable(self) -> None:
        """Raise AuditError unless the log took its last entry (the caller then refuses to sign)."""
        if self.unwritten is None:
            return
        self.log.open()
        self.log.record({**self.unwritten, "late": True})
        self.unwritten = None
        log.warning("audit log writable again; the entry that failed was written late")

    def call(self, record: CallRecord) -> _Audited:
        """`with trail.call(record):` around one call's checks and dispatch; writes its entry on exit."""
        self.ensure_writable()
        return _Audited(self, record)

    def finish(self, record: CallRecord, exc: BaseException | None) -> None:
        if exc is None:
            if record.response is not None:
                self._write(record, "replayed" if record.replayed else "answered", record.response.status)
        elif isinstance(exc, PolicyDenied):
            self._write(record, "refused", 403)
        elif record.nonce is None:
            return  # never signed: nothing reached EXMO, nothing to audit
        elif isinstance(exc, UpstreamError):
            self._write(record, "unknown" if exc.sent else "not_sent", exc.status)
        else:
            # A signed call that ends any other way still leaves its line: e.g. its 40009 retry was
            # refused before sending (rate limit, shutdown), or the daemon was cancelled mid-call.
            self._write(record, "not_sent" if isinstance(exc, Exception) else "interrupted",
                        getattr(exc, "status", 503))

    def _write(self, record: CallRecord, outcome: str, status: int) -> None:
        result, code = record.exmo()
        entry = build_entry(
            request_id=record.request_id, client=record.client, account=record.account,
            method=record.method, params=record.params, nonce=record.nonce, http_status=status,
            exmo_result=result, exmo_error_code=code, outcome=outcome, settings=self.settings,
            latency_ms=(time.monotonic() - record.started) * 1000,
        )
        if record.paper:
            entry["paper"] = True  # answered from the paper ledger; nothing was signed or sent
        self._record(entry)

    def stream_event(self, *, request_id: str, client: str | None, account: str, method: str,
                     params: Params, nonce: int | None, outcome: str, exmo_error_code: str | None = None,
                     seconds: float = 0.0) -> None:
        """A private WebSocket stream's login (`ws/login`) or end (`ws/close`), in the same shape as a
        call's entry so `audit tail|grep` read it alike (method, params, nonce, outcome)."""
        self._record(build_entry(
            request_id=request_id, client=client, account=account, method=method, params=params,
            nonce=nonce, http_status=101, exmo_result=None if exmo_error_code is None else False,
            exmo_error_code=exmo_error_code, outcome=outcome, settings=self.settings,
            latency_ms=seconds * 1000,
        ))

    def _record(self, entry: dict[str, Any]) -> None:
        try:
            self.log.record(entry)
        except Exception as exc:
            self.unwritten = entry
            log.error("audit log write failed (%s); signing is refused until it can be written",
                      exc if isinstance(exc, AuditError) else type(exc).__name__)


class _Audited:
    """The context manager `AuditTrail.call` returns (a class: cheaper than a generator per call)."""

    __slots__ = ("_record", "_trail")

    def __init__(self, trail: AuditTrail, record: CallRecord) -> None:
        self._trail, self._record = trail, record

    def __enter__(self) -> CallRecord:
        return self._record

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
                 ) -> None:
        self._trail.finish(self._record, exc)
