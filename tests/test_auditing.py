"""AuditTrail: the outcome of each private call, and no trading while the log cannot be written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.audit.log import AuditError
from proxy.audit.trail import AuditTrail, CallRecord
from proxy.config.sections import AuditSettings
from proxy.policy.rules import PolicyDenied
from proxy.upstream.client import UpstreamError, UpstreamResponse

OK = UpstreamResponse(200, b'{"result":true,"error":"","order_id":1}', "application/json")


def trail(tmp_path: Path) -> AuditTrail:
    t = AuditTrail(tmp_path, AuditSettings())
    t.open()
    return t


def lines(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]


def record() -> CallRecord:
    return CallRecord("rid-1", None, "main", "order_create", (("pair", "BTC_USDT"),))


def test_answered_refused_and_unknown_outcomes(tmp_path: Path) -> None:
    """answered / refused / unknown / not_sent each leave one line; unsigned failures leave none."""
    t = trail(tmp_path)
    with t.call(record()) as r:
        r.signed(11)
        r.response = OK
    with pytest.raises(PolicyDenied), t.call(record()):
        raise PolicyDenied("halted", "no")
    with pytest.raises(UpstreamError), t.call(record()) as r:
        r.signed(12)
        raise UpstreamError(504, "upstream_timeout", "x", sent=True)
    with pytest.raises(UpstreamError), t.call(record()) as r:
        r.signed(13)
        raise UpstreamError(502, "upstream_unreachable", "x", sent=False)
    with pytest.raises(UpstreamError), t.call(record()):
        raise UpstreamError(502, "upstream_unreachable", "x", sent=False)  # never signed
    got = [(e["outcome"], e["nonce"], e["http_status"]) for e in lines(tmp_path)]
    assert got == [("answered", 11, 200), ("refused", None, 403), ("unknown", 12, 504), ("not_sent", 13, 502)]
    assert lines(tmp_path)[0]["exmo_result"] is True


def test_a_failed_write_blocks_signing_until_a_real_write_succeeds(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Full disk: the answered call still returns, the next call is refused, recovery writes it late."""
    t = trail(tmp_path)
    real_record = t.log.record

    def full_disk(entry: Any) -> None:
        raise AuditError("No space left on device")

    monkeypatch.setattr(t.log, "record", full_disk)
    with t.call(record()) as r:  # the call already happened: no exception reaches the client
        r.signed(21)
        r.response = OK
    with pytest.raises(AuditError), t.call(record()):
        pytest.fail("must not be reached: signing while the audit log is broken")
    monkeypatch.setattr(t.log, "record", real_record)
    with t.call(record()) as r:
        r.signed(22)
        r.response = OK
    assert [(e["nonce"], e.get("late", False)) for e in lines(tmp_path)] == [(21, True), (22, False)]


def test_an_unexpected_error_while_writing_still_answers(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Any exception from the writer is contained: the executed call's answer must reach the client."""
    t = trail(tmp_path)
    monkeypatch.setattr(t.log, "record", lambda entry: (_ for _ in ()).throw(UnicodeEncodeError(
        "utf-8", "x", 0, 1, "surrogates not allowed")))
    with t.call(record()) as r:
        r.signed(31)
        r.response = OK
    assert t.unwritten is not None and t.unwritten["nonce"] == 31


def test_a_signed_call_that_ends_otherwise_still_leaves_a_line(tmp_path: Path) -> None:
    """A 40009 retry refused before sending (rate limit, shutdown) is on record as not_sent."""
    from proxy.calls.ratelimit import RateLimited

    t = trail(tmp_path)
    with pytest.raises(RateLimited), t.call(record()) as r:
        r.signed(41)
        raise RateLimited(1.0)
    with pytest.raises(RateLimited), t.call(record()):
        raise RateLimited(1.0)  # never signed: nothing to audit
    assert [(e["nonce"], e["outcome"]) for e in lines(tmp_path)] == [(41, "not_sent")]
