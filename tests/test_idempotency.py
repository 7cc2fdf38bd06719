"""Idempotency records and keyed calls as units: the journal, expiry, bounds, waiting and releasing.

The end-to-end proof (a real daemon, the simulator, restarts and kill -9) is in test_e2e_idempotency.py
and test_e2e_upstream_faults.py; these pin the rules one by one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from proxy.calls import idempotency_store
from proxy.calls.dispatch import NotSent
from proxy.calls.idempotency import Idempotency, IdempotencyRefusal, check_key, fingerprint, take_key
from proxy.calls.idempotency_store import Answer, IdempotencyStore, StoreUnwritable
from proxy.calls.records import LocalRecords
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import UpstreamError, UpstreamResponse

OK = Answer(200, b'{"result":true,"order_id":1}', "application/json")
TIMEOUT = Answer(504, b'{"result":false,"proxy_error":"upstream_timeout"}', "application/json")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _store(tmp_path: Path, ttl_s: float = 3600, clock: Clock | None = None) -> IdempotencyStore:
    store = IdempotencyStore(tmp_path, ttl_s, clock or Clock())
    store.open()
    return store


def test_records_outlive_the_process(tmp_path: Path) -> None:
    """Done, pending and released records read back from the journal as they were left."""
    store = _store(tmp_path)
    store.begin("done", "f1")
    store.complete("done", TIMEOUT)
    store.begin("pending", "f2")
    store.begin("released", "f3")
    store.release("released")
    store.close()
    again = _store(tmp_path)
    done, pending = again.get("done"), again.get("pending")
    assert done is not None and done.answer == TIMEOUT
    assert pending is not None and pending.answer is None and pending.fingerprint == "f2"
    assert again.get("released") is None


def test_torn_and_damaged_lines_are_skipped(tmp_path: Path) -> None:
    """A line cut by a kill -9 (or garbage) costs that line only; the journal is rewritten clean."""
    store = _store(tmp_path)
    store.begin("a", "f")
    store.complete("a", OK)
    store.close()
    journal = tmp_path / idempotency_store.FILE_NAME
    journal.write_bytes(journal.read_bytes() + b'not json\n{"s":"b","e":"pending","f":"g","t":')
    again = _store(tmp_path)
    record = again.get("a")
    assert record is not None and record.answer == OK and again.get("b") is None
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_records_expire(tmp_path: Path) -> None:
    """A record lives ttl_s from its call's arrival, also across a restart."""
    clock = Clock()
    store = _store(tmp_path, ttl_s=60, clock=clock)
    store.begin("a", "f")
    store.complete("a", OK)
    clock.now += 59
    assert store.get("a") is not None
    clock.now += 2
    assert store.get("a") is None
    store.begin("b", "f")
    store.close()
    clock.now += 61
    assert len(_store(tmp_path, ttl_s=60, clock=clock)) == 0


def test_the_store_is_bounded_and_drops_the_oldest_finished(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound the oldest finished record goes; a pending one (in flight) never does."""
    monkeypatch.setattr(idempotency_store, "MAX_RECORDS", 3)
    store = _store(tmp_path)
    store.begin("pending", "f")
    for scope in ("old", "mid", "new"):
        store.begin(scope, "f")
        store.complete(scope, OK)
    assert len(store) == 3 and store.get("old") is None and store.get("pending") is not None


def test_the_journal_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Released and replaced lines do not pile up: the journal is rewritten to what is live."""
    monkeypatch.setattr(idempotency_store, "COMPACT_FROM_BYTES", 4096)
    store = _store(tmp_path)
    for n in range(200):
        store.begin(f"s{n}", "f")
        store.release(f"s{n}")
    store.begin("kept", "f")
    store.complete("kept", OK)
    assert (tmp_path / idempotency_store.FILE_NAME).stat().st_size < 4096
    store.close()
    record = _store(tmp_path).get("kept")
    assert record is not None and record.answer == OK


def test_a_pending_record_that_cannot_be_written_refuses_the_call(tmp_path: Path) -> None:
    """No durable record, no guarantee: the call is refused with 503 and not sent."""
    store = _store(tmp_path)
    store.close()
    with pytest.raises(StoreUnwritable) as info:
        store.begin("a", "f")
    assert (info.value.status, info.value.slug) == (503, "idempotency_unwritable")
    assert store.get("a") is None


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, "tab\there"])
def test_malformed_keys(key: str) -> None:
    """1 to 255 visible ASCII characters, else 400 bad_idempotency_key."""
    with pytest.raises(IdempotencyRefusal) as info:
        check_key(key)
    assert (info.value.status, info.value.slug) == (400, "bad_idempotency_key")


def test_fingerprints() -> None:
    """The same method and parameters, in any order, are one call; anything else is another."""
    params = (("pair", "BTC_USDT"), ("quantity", "1"))
    assert fingerprint("order_create", params) == fingerprint("order_create", params[::-1])
    assert fingerprint("order_create", params) != fingerprint("order_create", (("pair", "BTC_USDT"),))
    assert fingerprint("order_create", params) != fingerprint("stop_market_order_create", params)


def _response(answer: Answer = OK) -> UpstreamResponse:
    return UpstreamResponse(answer.status, answer.body, answer.content_type)


async def test_a_call_refused_before_sending_leaves_no_record(tmp_path: Path) -> None:
    """Not sent (e.g. 429, shutting down): the retry is a new call and is sent."""
    keyed = Idempotency(LocalRecords(_store(tmp_path)), Metrics())
    sent: list[int] = []

    async def refused(on_signed: object) -> UpstreamResponse:
        raise NotSent(503, "shutting_down", "not sent")

    async def works(on_signed: object) -> UpstreamResponse:
        sent.append(1)
        return _response()

    with pytest.raises(NotSent):
        await keyed.call("k", "main", "order_create", (), 1.0, refused, lambda nonce: None)
    answer = await keyed.call("k", "main", "order_create", (), 1.0, works, lambda nonce: None)
    assert answer == (_response(), False)
    assert sent == [1]


async def test_an_answer_lost_after_sending_is_kept_as_unknown(tmp_path: Path) -> None:
    """A 504 after sending, or an interruption after signing, is the answer every retry gets."""
    keyed = Idempotency(LocalRecords(_store(tmp_path)), Metrics())

    async def timed_out(on_signed: object) -> UpstreamResponse:
        raise UpstreamError(504, "upstream_timeout", "no answer; outcome unknown", sent=True)

    async def interrupted(on_signed: object) -> UpstreamResponse:
        assert callable(on_signed)
        on_signed(123)
        raise asyncio.CancelledError

    with pytest.raises(UpstreamError):
        await keyed.call("a", "main", "order_create", (), 1.0, timed_out, lambda nonce: None)
    replay, replayed = await keyed.call("a", "main", "order_create", (), 1.0, timed_out, lambda nonce: None)
    assert replayed and replay.status == 504 and json.loads(replay.body)["proxy_error"] == "upstream_timeout"
    with pytest.raises(asyncio.CancelledError):
        await keyed.call("b", "main", "order_create", (), 1.0, interrupted, lambda nonce: None)
    replay, replayed = await keyed.call("b", "main", "order_create", (), 1.0, timed_out, lambda nonce: None)
    assert replayed and (replay.status, json.loads(replay.body)["proxy_error"]) == (502, "outcome_unknown")


async def test_a_retry_waits_for_the_call_in_flight(tmp_path: Path) -> None:
    """Two at once: one is sent, the other gets its answer when it comes (or 409 if it cannot wait)."""
    keyed = Idempotency(LocalRecords(_store(tmp_path)), Metrics())
    release = asyncio.Event()
    sent: list[int] = []

    async def slow(on_signed: object) -> UpstreamResponse:
        sent.append(1)
        await release.wait()
        return _response()

    first = asyncio.ensure_future(keyed.call("k", "main", "order_create", (), 5.0, slow, lambda nonce: None))
    await asyncio.sleep(0)
    with pytest.raises(IdempotencyRefusal) as info:
        await keyed.call("k", "main", "order_create", (), 0.05, slow, lambda nonce: None)
    assert (info.value.status, info.value.slug) == (409, "idempotency_in_flight")
    second = asyncio.ensure_future(keyed.call("k", "main", "order_create", (), 5.0, slow, lambda nonce: None))
    await asyncio.sleep(0)
    release.set()
    assert await first == (_response(), False)
    assert await second == (_response(), True)
    assert sent == [1]


async def test_the_same_key_for_another_call_is_refused(tmp_path: Path) -> None:
    """422 whether the first call is finished or still in flight; nothing is sent for it."""
    keyed = Idempotency(LocalRecords(_store(tmp_path)), Metrics())

    async def works(on_signed: object) -> UpstreamResponse:
        return _response()

    await keyed.call("k", "main", "order_create", (("quantity", "1"),), 1.0, works, lambda nonce: None)
    with pytest.raises(IdempotencyRefusal) as info:
        await keyed.call("k", "main", "order_create", (("quantity", "2"),), 1.0, works, lambda nonce: None)
    assert (info.value.status, info.value.slug) == (422, "idempotency_mismatch")


def test_the_key_may_come_as_a_parameter_that_is_never_sent() -> None:
    """`idempotency_key` in the parameters is the key (for libraries that cannot set a header per
    call) and is taken out of what is signed; header and parameter that differ are a 400."""
    params = (("pair", "BTC_USDT"), ("idempotency_key", "k-1"), ("quantity", "1"))
    assert take_key(None, params) == ("k-1", (("pair", "BTC_USDT"), ("quantity", "1")))
    assert take_key("k-1", params) == ("k-1", (("pair", "BTC_USDT"), ("quantity", "1")))
    assert take_key("h", (("pair", "BTC_USDT"),)) == ("h", (("pair", "BTC_USDT"),))
    with pytest.raises(IdempotencyRefusal) as info:
        take_key("k-2", params)
    assert (info.value.status, info.value.slug) == (400, "bad_idempotency_key")


def test_a_compaction_during_begin_keeps_the_new_pending_record(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The pending line that triggers a compaction is in the rewritten journal: a kill -9 right after
    it still finds the record (else a retry would be sent as a new call)."""
    monkeypatch.setattr(idempotency_store, "COMPACT_FROM_BYTES", 1)  # every line compacts
    store = _store(tmp_path)
    store.begin("in-flight", "f")
    store.close()  # the process dies here
    record = _store(tmp_path).get("in-flight")
    assert record is not None and record.answer is None


async def test_exmo_refusals_and_refusals_after_signing_leave_no_record(tmp_path: Path) -> None:
    """A 40009 or 40034 answer, or a refusal after a 40009 was signed and rejected, executed nothing:
    the retry is sent, not answered with the refusal for a day."""
    keyed = Idempotency(LocalRecords(_store(tmp_path)), Metrics())
    sent: list[str] = []
    rate = Answer(200, b'{"result":false,"error":"Error 40034: Access is denied, rate limit is exceeded"}',
                  "application/json")

    async def refused_by_exmo(on_signed: object) -> UpstreamResponse:
        sent.append("40034")
        return _response(rate)

    async def not_sent_after_40009(on_signed: object) -> UpstreamResponse:
        assert callable(on_signed)
        on_signed(1)
        sent.append("40009")
        raise NotSent(503, "shutting_down", "not sent")

    async def works(on_signed: object) -> UpstreamResponse:
        sent.append("ok")
        return _response()

    assert (await keyed.call("a", "K", "order_create", (), 1.0, refused_by_exmo, lambda n: None))[1] is False
    assert await keyed.call("a", "K", "order_create", (), 1.0, works, lambda n: None) == (_response(), False)
    with pytest.raises(NotSent):
        await keyed.call("b", "K", "order_create", (), 1.0, not_sent_after_40009, lambda n: None)
    assert await keyed.call("b", "K", "order_create", (), 1.0, works, lambda n: None) == (_response(), False)
    assert sent == ["40034", "ok", "40009", "ok"]


def test_records_read_back_in_arrival_order(tmp_path: Path) -> None:
    """A call that finishes after a later one began keeps its place, so expiry (oldest first) still
    finds it first after a restart."""
    clock = Clock()
    store = _store(tmp_path, ttl_s=3600, clock=clock)
    store.begin("first", "f")
    clock.now += 10
    store.begin("second", "f")
    store.complete("second", OK)
    store.complete("first", OK)
    store.close()
    clock.now += 3595  # "first" (arrived 3605 s ago) has expired, "second" (3595 s) has not
    again = _store(tmp_path, ttl_s=3600, clock=clock)
    assert len(again) == 1 and again.get("second") is not None
