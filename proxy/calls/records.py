"""Where idempotency records live: this daemon's journal, or Redis when several daemons share a key.

Both give idempotency.py the same async interface (`Records`). In Redis a record is one key per
(API key, Idempotency-Key) scope with the record's TTL: written pending with SET NX before the call is
signed (two daemons cannot both begin one key), done with the answer, deleted when the call was not
sent. A pending record names its daemon and until when that daemon may still be waiting for EXMO
(`busy_until`): a retry that reaches another daemon meanwhile waits for the answer, and only a record
pending past that time is answered "outcome unknown" (its daemon stopped mid-call).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from proxy.calls.idempotency_store import Answer, IdempotencyStore, Record
from proxy.coord.keys import PREFIX, CoordinationUnavailable

if TYPE_CHECKING:
    from proxy.coord.client import Coordinator

log = logging.getLogger(__name__)


class Records(Protocol):
    async def get(self, scope: str) -> Record | None: ...

    async def begin(self, scope: str, fingerprint: str) -> Record | None:
        """Record a call as pending; None when begun, else the record that exists already."""

    async def complete(self, scope: str, answer: Answer) -> None: ...

    async def release(self, scope: str) -> None: ...

    def reconfigure(self, ttl_s: float) -> None: ...


class LocalRecords:
    """The journal in state_dir (idempotency_store.py); one daemon, so nothing can race a begin."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store

    async def get(self, scope: str) -> Record | None:
        return self.store.get(scope)

    async def begin(self, scope: str, fingerprint: str) -> Record | None:
        existing = self.store.get(scope)
        if existing is None:
            self.store.begin(scope, fingerprint)
        return existing

    async def complete(self, scope: str, answer: Answer) -> None:
        self.store.complete(scope, answer)

    async def release(self, scope: str) -> None:
        self.store.release(scope)

    def reconfigure(self, ttl_s: float) -> None:
        self.store.reconfigure(ttl_s)


class SharedRecords:
    """Records in Redis, shared by every daemon on it."""

    def __init__(self, coordinator: Coordinator, ttl_s: float, busy_s: float) -> None:
        self._coordinator = coordinator
        self.ttl_s, self.busy_s = ttl_s, busy_s  # busy_s: the longest a call can take, queued and sent
        self._owner = secrets.token_hex(8)  # this process: a record it began is in flight here
        # the records of calls in flight here: fingerprint, created, the record's text as written
        self._begun: dict[str, tuple[str, float, str]] = {}

    def reconfigure(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s

    async def get(self, scope: str) -> Record | None:
        raw = await self._coordinator.get(_key(scope))
        return None if raw is None else _record(raw)

    async def begin(self, scope: str, fingerprint: str) -> Record | None:
        now = time.time()
        text = json.dumps({"fp": fingerprint, "created": now, "owner": self._owner,
                           "until": now + self.busy_s, "begun": secrets.token_hex(8)})
        for _ in range(2):  # the other record may expire between the two calls
            made = await self._coordinator.set(_key(scope), text, max(1, int(self.ttl_s)), only_new=True)
            raw = None if made else await self._coordinator.get(_key(scope))
            # (raw == text: this SET ran and its reply was lost, so it was sent again and refused)
            if made or raw == text.encode():
                self._begun[scope] = fingerprint, now, text
                return None
            if raw is not None:
                return _record(raw)
        raise CoordinationUnavailable("Redis would neither take nor show this Idempotency-Key's record")

    async def complete(self, scope: str, answer: Answer) -> None:
        doc = {"fp": "", "created": time.time(), "answer": {
            "status": answer.status, "body": base64.b64encode(answer.body).decode(),
            "content_type": answer.content_type}}
        try:
            begun = self._begun.pop(scope, None)
            if begun is not None:
                doc["fp"], doc["created"] = begun[0], begun[1]
            else:  # a record left pending by another daemon, now answered here
                current = await self.get(scope)
                if current is not None:
                    doc["fp"], doc["created"] = current.fingerprint, current.created
            await self._coordinator.set(_key(scope), json.dumps(doc), max(1, int(self.ttl_s)))
        except CoordinationUnavailable:  # the answer still goes back; a retry finds the record pending
            log.warning("the answer of an Idempotency-Key call could not be kept in Redis; a retry will be"
                        " answered 'outcome unknown' once the call's time is up")

    async def release(self, scope: str) -> None:
        """The call was not sent: remove its pending record, if it is still the one this call wrote
        (compared in Redis, so a resent delete cannot remove another daemon's newer record)."""
        begun = self._begun.pop(scope, None)
        if begun is None:
            return
        try:
            await self._coordinator.delete_if(_key(scope), begun[2])
        except CoordinationUnavailable:
            log.warning("a not-sent Idempotency-Key call's record could not be removed from Redis; it is"
                        " answered 'outcome unknown' once the call's time is up")


def _key(scope: str) -> str:
    return f"{PREFIX}idem:{scope}"


def _record(raw: bytes | str) -> Record:
    doc: dict[str, Any] = json.loads(raw)
    found = doc.get("answer")
    answer = None
    if isinstance(found, dict):
        answer = Answer(int(found["status"]), base64.b64decode(found["body"]), str(found["content_type"]))
    record = Record(str(doc.get("fp", "")), float(doc.get("created", 0.0)), answer)
    return replace(record, owner=str(doc.get("owner", "")), busy_until=float(doc.get("until", 0.0)))
