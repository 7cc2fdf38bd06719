"""The audit log: whole lines only (even under kill -9), redaction, rotation, EXMO outcomes, readers."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from proxy.audit import read as auditread
from proxy.audit.entry import MONEY_OUT_KEPT, build_entry
from proxy.audit.log import AuditError, AuditLog
from proxy.audit.read import format_entry, grep, iter_entries, tail
from proxy.config.sections import AuditSettings
from proxy.exmo.answers import exmo_outcome

REPO = Path(__file__).resolve().parents[1]
T0 = 1_795_492_625.123  # 2026-11-24T03:57:05.123Z
DEFAULTS = AuditSettings()


def _entry(method: str = "order_create", params: Sequence[tuple[str, str]] = (("pair", "BTC_USD"),),
           settings: AuditSettings = DEFAULTS, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "r-1", "client": "bot", "account": "main", "method": method, "params": params,
        "nonce": 1_700_000_000_000, "http_status": 200, "exmo_result": True, "exmo_error_code": None,
        "latency_ms": 12.345, "outcome": "answered", "settings": settings, "now": lambda: T0,
    }
    return build_entry(**(fields | changes))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog(tmp_path)
    opened.open()
    yield opened
    opened.close()


def _raw_lines(tmp_path: Path) -> list[bytes]:
    return (tmp_path / "audit.jsonl").read_bytes().splitlines(keepends=True)


def test_round_trip(log: AuditLog, tmp_path: Path) -> None:
    """What record() writes, iter_entries() reads back unchanged, one line per entry."""
    entries = [_entry(request_id=f"r-{i}", params=[("note", "zwölf\n\"quoted\"")]) for i in range(3)]
    for entry in entries:
        log.record(entry)
    assert list(iter_entries(tmp_path)) == entries
    assert len(_raw_lines(tmp_path)) == 3


def test_file_is_created_private(log: AuditLog, tmp_path: Path) -> None:
    """The log is created 0600 whatever the umask."""
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600


def test_existing_file_is_made_private(tmp_path: Path) -> None:
    """An older log readable by others is narrowed to 0600 on open."""
    (tmp_path / "audit.jsonl").write_bytes(b"")
    (tmp_path / "audit.jsonl").chmod(0o644)
    AuditLog(tmp_path).open()
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600


def test_record_after_close_raises(log: AuditLog) -> None:
    """A record() on a closed log is an AuditError, not a silent loss."""
    log.close()
    with pytest.raises(AuditError, match="not open"):
        log.record(_entry())


def test_key_order_and_format() -> None:
    """Entries have exactly the documented keys, in order, with ms UTC time and rounded latency."""
    entry = _entry()
    assert list(entry) == ["time", "request_id", "client", "account", "method", "params", "nonce",
                           "http_status", "exmo_result", "exmo_error_code", "latency_ms", "outcome"]
    assert entry["time"] == "2026-11-24T03:57:05.123Z"
    assert entry["latency_ms"] == 12.3
    assert entry["params"] == {"pair": "BTC_USD"}


def test_key_order_survives_the_file(log: AuditLog, tmp_path: Path) -> None:
    """The line on disk keeps the same key order (readers and humans rely on it)."""
    log.record(_entry())
    assert _raw_lines(tmp_path)[0].startswith(b'{"time":"2026-11-24T03:57:05.123Z","request_id":"r-1",')


@pytest.mark.parametrize(("method", "params", "redact", "expected"), [
    pytest.param("order_create", [("pair", "BTC_USD"), ("comment", "mine")], {"comment"},
                 {"pair": "BTC_USD", "comment": "***"}, id="listed-name-redacted"),
    pytest.param("order_create", [("pair", "BTC_USD")], set(), {"pair": "BTC_USD"}, id="nothing-listed"),
    pytest.param("withdraw_crypt", [("address", "1Abc"), ("amount", "1"), ("currency", "BTC"),
                                    ("invoice", "memo"), ("transport", "BTC"), ("note", "x")],
                 {"address", "amount", "currency", "invoice", "transport", "note"},
                 {"address": "1Abc", "amount": "1", "currency": "BTC", "invoice": "memo", "transport": "BTC",
                  "note": "***"}, id="withdraw-keeps-destination"),
    pytest.param("excode_create", [("code", "EX-1"), ("amount", "10"), ("currency", "BTC")],
                 {"code", "amount"}, {"code": "EX-1", "amount": "10", "currency": "BTC"},
                 id="excode-create-keeps-amount"),
    pytest.param("excode_load", [("code", "EX-CODE_secret")], {"code"}, {"code": "***"},
                 id="excode-load-is-not-money-out"),
])
def test_redaction(method: str, params: list[tuple[str, str]], redact: set[str],
                   expected: dict[str, str]) -> None:
    """Listed parameters become "***", except where money-out calls must show where money went."""
    entry = _entry(method=method, params=params, settings=AuditSettings(redact=frozenset(redact)))
    assert entry["params"] == expected


def test_money_out_keep_list_is_the_documented_one() -> None:
    """The keep-list names the destination and size of a withdrawal or EX-CODE."""
    assert frozenset({"address", "invoice", "code", "amount", "currency", "transport"}) == MONEY_OUT_KEPT


def test_torn_tail_is_moved_aside_on_open(tmp_path: Path) -> None:
    """A last line cut by a crash is moved to audit.jsonl.torn on open; complete lines stay intact."""
    first = AuditLog(tmp_path)
    first.open()
    entries = [_entry(request_id=f"r-{i}") for i in range(2)]
    for entry in entries:
        first.record(entry)
    first.close()
    with (tmp_path / "audit.jsonl").open("ab") as file:
        file.write(b'{"time":"2026-11-24T03:57:06.000Z","request_id":"r-torn","cli')
    second = AuditLog(tmp_path)
    second.open()
    second.record(_entry(request_id="r-after"))
    second.close()
    lines = _raw_lines(tmp_path)
    assert [json.loads(line)["request_id"] for line in lines] == ["r-0", "r-1", "r-after"]
    assert all(line.endswith(b"\n") for line in lines)
    assert (tmp_path / "audit.jsonl.torn").read_bytes().startswith(b'{"time":"2026-11-24T03:57:06.000Z"')


@pytest.mark.parametrize("content", [
    pytest.param(b'{"time":"2026-', id="only-a-partial-line"),
    pytest.param(b"\0" * 5000, id="zeros-after-power-loss"),
])
def test_file_without_any_complete_line_becomes_empty(tmp_path: Path, content: bytes) -> None:
    """With no complete line at all, open leaves an empty log and keeps the bytes in .torn."""
    (tmp_path / "audit.jsonl").write_bytes(content)
    AuditLog(tmp_path).open()
    assert (tmp_path / "audit.jsonl").read_bytes() == b""
    assert (tmp_path / "audit.jsonl.torn").read_bytes() == content + b"\n"


def test_long_torn_line_is_found_across_read_chunks(log: AuditLog, tmp_path: Path) -> None:
    """A torn line longer than the repair's read chunk is cut at the right newline."""
    log.record(_entry())
    log.close()
    with (tmp_path / "audit.jsonl").open("ab") as file:
        file.write(b"x" * (200 * 1024))
    log.open()
    assert [e["request_id"] for e in iter_entries(tmp_path)] == ["r-1"]
    assert _raw_lines(tmp_path)[-1].endswith(b"\n")


def test_complete_file_is_left_alone(log: AuditLog, tmp_path: Path) -> None:
    """Reopening a valid log changes nothing and creates no .torn file."""
    log.record(_entry())
    before = (tmp_path / "audit.jsonl").read_bytes()
    log.open()
    assert (tmp_path / "audit.jsonl").read_bytes() == before
    assert not (tmp_path / "audit.jsonl.torn").exists()


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from proxy.audit.log import AuditLog

    log = AuditLog(Path(sys.argv[1]))
    log.open()
    done = 0
    while True:
        # sizes vary so that lines straddle page boundaries in the page cache
        log.record({"n": done, "pad": "x" * (100 + (done * 577) % 6000)})
        done += 1
        sys.stdout.write(f"{done}\\n")
        sys.stdout.flush()
""")


@pytest.mark.parametrize("burst", [pytest.param(300, id="early"), pytest.param(3000, id="mid-burst")])
def test_kill_9_leaves_only_whole_lines(tmp_path: Path, burst: int) -> None:
    """SIGKILL mid-burst: every completed record() is a whole line on disk and every line parses."""
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", CHILD, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=REPO) as child:
        assert child.stdout is not None
        reported = 0
        while reported < burst:
            line = child.stdout.readline()
            assert line, "the child stopped before the burst"
            reported = int(line)
        child.send_signal(signal.SIGKILL)
        reported = max([reported, *(int(n) for n in child.stdout.read().split())])
        assert child.wait(timeout=10) == -signal.SIGKILL
    lines = _raw_lines(tmp_path)
    complete = [line for line in lines if line.endswith(b"\n")]
    assert [json.loads(line)["n"] for line in complete] == list(range(len(complete)))
    assert len(complete) >= reported
    assert len(lines) - len(complete) <= 1  # a torn tail (a write cut by the kill) can only be the last
    AuditLog(tmp_path).open()
    assert all(json.loads(line) for line in _raw_lines(tmp_path))


def test_record_is_one_write_per_entry(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each entry, newline included, reaches the kernel in a single write() call (what kill -9 relies on)."""
    calls: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        calls.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr("proxy.audit.log.os.write", spy)
    log.record(_entry(params=[("pad", "x" * 20_000)]))
    assert len(calls) == 1
    assert calls[0].endswith(b"\n") and json.loads(calls[0])["params"]["pad"] == "x" * 20_000


def test_rotation_at_max_bytes_keeps_n_files(tmp_path: Path) -> None:
    """Before a write that would pass max_bytes the file becomes .1, older ones shift, beyond keep drop."""
    line_bytes = len(json.dumps(_entry(request_id="r-00"), ensure_ascii=False, separators=(",", ":"))) + 1
    log = AuditLog(tmp_path, AuditSettings(max_bytes=2 * line_bytes, keep=2))
    log.open()
    for i in range(9):
        log.record(_entry(request_id=f"r-{i:02d}"))
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size <= 2 * line_bytes for p in tmp_path.iterdir())
    assert [e["request_id"] for e in iter_entries(tmp_path)] == ["r-04", "r-05", "r-06", "r-07", "r-08"]
    assert [e["request_id"] for e in iter_entries(tmp_path, include_rotated=False)] == ["r-08"]


def test_line_larger_than_max_bytes_still_written(tmp_path: Path) -> None:
    """An entry bigger than max_bytes gets a file of its own rather than being dropped."""
    log = AuditLog(tmp_path, AuditSettings(max_bytes=100, keep=5))
    log.open()
    log.record(_entry(request_id="big-1"))
    log.record(_entry(request_id="big-2"))
    assert [e["request_id"] for e in iter_entries(tmp_path)] == ["big-1", "big-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.jsonl", "audit.jsonl.1"]


def test_keep_zero_drops_the_full_file(tmp_path: Path) -> None:
    """keep=0 keeps no rotated file: the full log is removed and a new one started."""
    log = AuditLog(tmp_path, AuditSettings(max_bytes=100, keep=0))
    log.open()
    log.record(_entry(request_id="old"))
    log.record(_entry(request_id="new"))
    assert [p.name for p in tmp_path.iterdir()] == ["audit.jsonl"]
    assert [e["request_id"] for e in iter_entries(tmp_path)] == ["new"]


def _short_writes(monkeypatch: pytest.MonkeyPatch, marker: bytes) -> None:
    """os.write in proxy.audit.log writes only half of any payload holding `marker`, like a full disk."""
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        if marker in data:
            return real_write(fd, data[: len(data) // 2])
        return real_write(fd, data)

    monkeypatch.setattr("proxy.audit.log.os.write", half)


def test_short_write_raises_and_leaves_no_partial_line(
        log: AuditLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short write is an AuditError, and the half line is cut off again so the file stays valid."""
    log.record(_entry(request_id="before"))
    _short_writes(monkeypatch, b"r-short")
    with pytest.raises(AuditError, match=r"short write, .* disk full"):
        log.record(_entry(request_id="r-short"))
    log.record(_entry(request_id="after"))
    assert [json.loads(line)["request_id"] for line in _raw_lines(tmp_path)] == ["before", "after"]


def test_failed_write_raises(log: AuditLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from write() is an AuditError naming the cause; the file is unchanged."""
    log.record(_entry())
    before = (tmp_path / "audit.jsonl").read_bytes()

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("proxy.audit.log.os.write", full)
    with pytest.raises(AuditError, match="No space left on device"):
        log.record(_entry(request_id="lost"))
    monkeypatch.undo()
    assert (tmp_path / "audit.jsonl").read_bytes() == before


def test_failed_rollback_is_repaired_before_the_next_entry(
        log: AuditLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the half line cannot be truncated away, the next record() moves it aside before writing."""
    _short_writes(monkeypatch, b"r-short")

    def refuse(fd: int, length: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("proxy.audit.log.os.ftruncate", refuse)
    with pytest.raises(AuditError):
        log.record(_entry(request_id="r-short"))
    monkeypatch.undo()
    log.record(_entry(request_id="after"))
    assert [json.loads(line)["request_id"] for line in _raw_lines(tmp_path)] == ["after"]
    assert (tmp_path / "audit.jsonl.torn").exists()


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(b'{"result":true,"error":"","order_id":1}', (True, None), id="success"),
    pytest.param(b'{"uid":1,"balances":{}}', (None, None), id="success-without-result"),
    pytest.param(b'{"result":false,"error":"Error 50052: Insufficient funds"}', (False, "50052"),
                 id="error-prefix"),
    pytest.param(b'{"result":false,"error":"40009: The nonce parameter is less or equal than what was used'
                 b' before \\"1700000000000\\""}', (False, "40009"), id="bare-code"),
    pytest.param(b'{"result":false,"error":"API rate limit exceeded for 1.2.3.4. Retry after 60 sec."}',
                 (False, None), id="error-text-without-code"),
    pytest.param(b'{"error":"Error 40017: Wrong api key"}', (False, "40017"), id="error-without-result"),
    pytest.param(b'{"error":{"code":"140434","msg":"Your margin balance is not sufficient"}}',
                 (False, "140434"), id="margin-string-code"),
    pytest.param(b'{"error":{"code":140333,"msg":"too many digits"}}', (False, "140333"),
                 id="margin-int-code"),
    pytest.param(b'{"error":{"msg":"no code"}}', (False, None), id="margin-without-code"),
    pytest.param(b'{"s":"error","errmsg":"strconv.ParseInt: parsing \\"\\": invalid syntax"}', (False, None),
                 id="candles-errmsg"),
    pytest.param(b'[{"order_id":1}]', (None, None), id="array-user-cancelled-orders"),
    pytest.param(b"<html><body>502 Bad Gateway</body></html>", (None, None), id="html"),
    pytest.param(b"", (None, None), id="empty"),
    pytest.param(b"\xff\xfe\x00garbage", (None, None), id="not-utf8"),
    pytest.param(b"[" * 100_000, (None, None), id="too-deep"),
    pytest.param(b'{"result":"yes","error":""}', (None, None), id="result-not-a-bool"),
])
def test_exmo_outcome(body: bytes, expected: tuple[bool | None, str | None]) -> None:
    """EXMO's result and error code are read from every answer shape in exmo-api.md §4, never raising."""
    assert exmo_outcome(200, body) == expected


def _fill(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.open()
    rows = [("main", "bot", "order_create", T0), ("main", "ui", "user_info", T0 + 60),
            ("alt", "bot", "order_create", T0 + 3600), ("alt", None, "withdraw_crypt", T0 + 86400)]
    for i, (account, client, method, when) in enumerate(rows):
        log.record(_entry(request_id=f"r-{i}", account=account, client=client, method=method,
                          params=[("pair", f"P{i}")], now=lambda when=when: when))
    log.close()


def test_iter_entries_skips_invalid_lines(tmp_path: Path) -> None:
    """Damaged, non-object and torn lines are skipped without an exception; the rest are read."""
    _fill(tmp_path)
    with (tmp_path / "audit.jsonl").open("ab") as file:
        file.write(b"not json\n[1,2]\n\0\0\0\n{\"time\":\"2026-")
    assert [e["request_id"] for e in iter_entries(tmp_path)] == ["r-0", "r-1", "r-2", "r-3"]


def test_iter_entries_of_an_empty_state_dir(tmp_path: Path) -> None:
    """No log yet reads as no entries."""
    assert list(iter_entries(tmp_path)) == []
    assert tail(tmp_path) == []


def _twelve_in_rotated_files(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, AuditSettings(max_bytes=700, keep=5))
    log.open()
    for i in range(12):
        log.record(_entry(request_id=f"r-{i:02d}"))
    log.close()


def test_tail_spans_rotated_files(tmp_path: Path) -> None:
    """tail(n) returns the last n entries oldest first, reaching into rotated files when needed."""
    _twelve_in_rotated_files(tmp_path)
    assert (tmp_path / "audit.jsonl.2").exists()
    assert [e["request_id"] for e in tail(tmp_path, 5)] == [f"r-{i:02d}" for i in range(7, 12)]
    assert [e["request_id"] for e in tail(tmp_path, 100)] == [f"r-{i:02d}" for i in range(12)]
    assert tail(tmp_path, 0) == []


def test_tail_reads_only_the_files_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short tail reads the current file only, not every rotated one."""
    _twelve_in_rotated_files(tmp_path)
    read: list[str] = []
    real_lines = auditread._lines

    def counting(path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
        read.append(path.name)
        return real_lines(path)

    monkeypatch.setattr(auditread, "_lines", counting)
    assert [e["request_id"] for e in tail(tmp_path, 1)] == ["r-11"]
    assert read == ["audit.jsonl"]


@pytest.mark.parametrize(("filters", "expected"), [
    pytest.param({}, ["r-0", "r-1", "r-2", "r-3"], id="no-filter"),
    pytest.param({"account": "main"}, ["r-0", "r-1"], id="account"),
    pytest.param({"method": "order_create"}, ["r-0", "r-2"], id="method"),
    pytest.param({"client": "bot"}, ["r-0", "r-2"], id="client"),
    pytest.param({"account": "alt", "method": "order_create"}, ["r-2"], id="and"),
    pytest.param({"text": '"pair":"P3"'}, ["r-3"], id="text-in-json-line"),
    pytest.param({"since": "2026-11-24T04:57"}, ["r-2", "r-3"], id="since-minute"),
    pytest.param({"since": "2026-11-24T03:58:05.123Z"}, ["r-1", "r-2", "r-3"], id="since-is-inclusive"),
    pytest.param({"since": "2026-11-25"}, ["r-3"], id="since-day"),
    pytest.param({"account": "nobody"}, [], id="no-match"),
])
def test_grep(tmp_path: Path, filters: dict[str, str], expected: list[str]) -> None:
    """grep combines its filters with AND; text matches the raw JSON line, since compares ISO times."""
    _fill(tmp_path)
    assert [e["request_id"] for e in grep(tmp_path, **filters)] == expected


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({}, "2026-11-24T03:57:05.123Z main bot order_create answered http=200 exmo=ok"
                     " nonce=1700000000000 12.3ms pair=BTC_USD", id="answered"),
    pytest.param({"exmo_result": False, "exmo_error_code": "50052", "params": [("note", "two words")]},
                 '2026-11-24T03:57:05.123Z main bot order_create answered http=200 exmo=50052'
                 ' nonce=1700000000000 12.3ms note="two words"', id="exmo-error-and-quoted-value"),
    pytest.param({"client": None, "nonce": None, "exmo_result": None, "http_status": 0,
                  "outcome": "not_sent", "params": []},
                 "2026-11-24T03:57:05.123Z main - order_create not_sent http=0 exmo=- nonce=- 12.3ms",
                 id="not-sent"),
])
def test_format_entry(changes: dict[str, Any], expected: str) -> None:
    """format_entry gives one human line: who, what, outcome, codes, nonce, latency, then k=v params."""
    assert format_entry(_entry(**changes)) == expected


def test_format_entry_of_a_foreign_line() -> None:
    """A line with missing or odd fields still formats, on one line."""
    assert format_entry({"time": "t", "params": ["odd"], "method": "a\nb"}) == (
        't - - "a\\nb" - http=- exmo=- nonce=- -ms')


def test_time_is_utc_with_milliseconds() -> None:
    """Times are UTC with exactly three fraction digits, truncated not rounded."""
    assert _entry(now=lambda: 0.0)["time"] == "1970-01-01T00:00:00.000Z"
    assert _entry(now=lambda: 59.9999)["time"] == "1970-01-01T00:00:59.999Z"
