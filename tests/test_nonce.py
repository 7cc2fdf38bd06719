"""Per-key nonces: strictly increasing, durable across restarts, one fsync per window, FIFO under load."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.calls import nonce as nonce_mod
from proxy.calls.nonce import AHEAD, WINDOW, NonceSequence
from proxy.calls.nonce_store import MAX_NONCE, NonceStateError, NonceStore, key_id

KEY = "K-" + "0123456789abcdef0123456789abcdef01234567"
OTHER_KEY = "K-" + "89abcdef0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000_000  # a plausible Unix-ms "now"


class FakeClock:
    """A settable millisecond clock."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class CountingStore(NonceStore):
    """A real store that also records every ceiling it is asked to persist."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.saves: list[int] = []

    def save(self, kid: str, ceiling: int) -> None:
        super().save(kid, ceiling)
        self.saves.append(ceiling)


def _store(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path)
    store.prepare()
    return store


def _restarted(old: NonceStore, tmp_path: Path) -> CountingStore:
    """What a restarted daemon sees: the old process (and its state_dir lock) is gone."""
    old.release()
    return _store(tmp_path)


def _state_file(store: NonceStore, api_key: str = KEY) -> Path:
    return store.directory / f"{key_id(api_key)}.json"


def _persisted(store: NonceStore, api_key: str = KEY) -> int:
    return int(json.loads(_state_file(store, api_key).read_text())["ceiling"])


async def test_first_nonce_is_the_clock_in_ms(tmp_path: Path) -> None:
    """With no state, the first nonce is the current Unix time in milliseconds."""
    seq = NonceSequence(_store(tmp_path), KEY, FakeClock())
    assert await seq.next() == T0


async def test_strictly_increasing_when_clock_steps_backwards(tmp_path: Path) -> None:
    """A clock that jumps back (NTP step) never repeats or lowers a nonce."""
    clock = FakeClock()
    seq = NonceSequence(_store(tmp_path), KEY, clock)
    seen = []
    for now in (T0, T0 + 5, T0 - 60_000, T0 - 60_000, T0 + 1, T0 + 100, T0 - 1):
        clock.now = now
        seen.append(await seq.next())
    assert all(b > a for a, b in itertools.pairwise(seen))
    assert seen[-2] == T0 + 100  # a clock ahead of the counter is followed again


async def test_frozen_clock_still_increments(tmp_path: Path) -> None:
    """A clock that does not move (coarse timer) yields consecutive nonces."""
    seq = NonceSequence(_store(tmp_path), KEY, FakeClock())
    assert [await seq.next() for _ in range(3)] == [T0, T0 + 1, T0 + 2]


async def test_restart_resumes_above_persisted_ceiling(tmp_path: Path) -> None:
    """A new sequence over the same state dir starts above every nonce the old one could have sent."""
    store = _store(tmp_path)
    first = NonceSequence(store, KEY, FakeClock())
    sent = [await first.next() for _ in range(50)]
    ceiling = _persisted(store)
    behind = FakeClock(T0 - 86_400_000)  # a day behind, e.g. a machine with a dead RTC battery
    second = NonceSequence(_restarted(store, tmp_path), KEY, behind)
    resumed = await second.next()
    assert resumed > ceiling > max(sent)  # above the ceiling, not merely above what was sent


async def test_restart_after_kill_mid_window_never_reuses(tmp_path: Path) -> None:
    """Even without a clean shutdown, nonces issued below the ceiling are never issued again."""
    store = _store(tmp_path)
    first = NonceSequence(store, KEY, FakeClock())
    sent = {await first.next() for _ in range(10)}
    del first  # no flush hook exists: the state on disk is all that survives
    second = NonceSequence(_restarted(store, tmp_path), KEY, FakeClock())
    assert not sent & {await second.next() for _ in range(10)}


async def test_one_save_per_window_with_a_frozen_clock(tmp_path: Path) -> None:
    """1000 nonces under a frozen clock persist once (no fsync per call)."""
    store = _store(tmp_path)
    seq = NonceSequence(store, KEY, FakeClock())
    for _ in range(1000):
        await seq.next()
    assert len(store.saves) == 1
    assert store.saves[0] >= seq.last


async def test_the_next_ceiling_is_written_once_half_the_window_is_used(tmp_path: Path) -> None:
    """Below the half-way mark no write; past it, one background write of the next window."""
    store = _store(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    await seq.next()
    ceiling = store.saves[-1]
    clock.now = ceiling - AHEAD  # exactly half used: no write yet
    assert await seq.next() == ceiling - AHEAD
    await seq.settle()
    assert store.saves == [ceiling]
    clock.now = ceiling - AHEAD + 1
    assert await seq.next() == ceiling - AHEAD + 1  # handed out at once, below the durable ceiling
    await seq.settle()
    assert store.saves == [ceiling, ceiling + WINDOW]
    assert _persisted(store) == seq.ceiling == ceiling + WINDOW


async def test_persisted_before_handed_out(tmp_path: Path) -> None:
    """Every nonce returned is at or below the ceiling already on disk."""
    store = _store(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    for step in range(5):
        clock.now = T0 + step * 3 * WINDOW
        issued = await seq.next()
        assert issued <= _persisted(store)


async def test_observe_lifts_the_counter_and_persists_before_use(tmp_path: Path) -> None:
    """observe(n) after a 40009 makes the next nonce n+1, durable before it is returned."""
    store = _store(tmp_path)
    seq = NonceSequence(store, KEY, FakeClock())
    await seq.next()
    seen_by_exmo = T0 + 50 * WINDOW
    seq.observe(seen_by_exmo)
    issued = await seq.next()
    assert issued == seen_by_exmo + 1
    assert _persisted(store) >= issued
    restarted = NonceSequence(_restarted(store, tmp_path), KEY, FakeClock())
    assert await restarted.next() > issued


async def test_observe_never_lowers_the_counter(tmp_path: Path) -> None:
    """observe() of a value below what we already used changes nothing."""
    seq = NonceSequence(_store(tmp_path), KEY, FakeClock())
    for _ in range(5):
        await seq.next()
    seq.observe(T0 - 1000)
    assert seq.last == T0 + 4
    assert await seq.next() == T0 + 5


async def test_observe_near_the_int64_limit_refuses_to_sign(tmp_path: Path) -> None:
    """A nonce EXMO reports near 2^63 exhausts the space: next() refuses instead of overflowing."""
    seq = NonceSequence(_store(tmp_path), KEY, FakeClock())
    seq.observe(MAX_NONCE)
    with pytest.raises(NonceStateError, match="exhausted"):
        await seq.next()


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[tuple[CountingStore, NonceSequence]]:
    """A sequence whose store directory has become a path under a regular file (root ignores chmod)."""
    store = _store(tmp_path / "ok")
    seq = NonceSequence(store, KEY, FakeClock())
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory\n")
    good = store.directory
    store.directory = blocker / "nonces"
    yield store, seq
    store.directory = good


async def test_unwritable_state_issues_no_nonce(unwritable: tuple[CountingStore, NonceSequence]) -> None:
    """If the ceiling cannot be made durable, next() raises NonceStateError and issues nothing."""
    store, seq = unwritable
    with pytest.raises(NonceStateError, match="cannot persist"):
        await seq.next()
    assert seq.last == 0
    assert store.saves == []


async def test_a_failed_write_ahead_uses_up_the_durable_window_then_refuses(tmp_path: Path) -> None:
    """The ceiling ahead cannot be written: nonces go on up to the durable ceiling, none above it,
    then NonceStateError; once the disk is back the sequence goes on, still increasing."""
    store = _store(tmp_path / "ok")
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    first = await seq.next()
    durable = _persisted(store)
    good = store.directory
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    store.directory = blocker / "nonces"
    clock.now = durable - 2  # past half the window: a write ahead starts, and fails
    assert await seq.next() == durable - 2
    await seq.settle()
    assert store.last_error is not None and "cannot persist" in store.last_error  # /readyz says why
    assert [await seq.next() for _ in range(2)] == [durable - 1, durable]
    with pytest.raises(NonceStateError, match="cannot persist"):
        await seq.next()
    assert seq.last == durable > first
    store.directory = good
    clock.now = T0 + 2 * WINDOW
    assert await seq.next() == T0 + 2 * WINDOW
    assert store.last_error is None


def test_unreadable_state_dir_is_nonce_state_error(tmp_path: Path) -> None:
    """A state dir that cannot be created or read stops start-up with NonceStateError."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    store = NonceStore(blocker)
    with pytest.raises(NonceStateError):
        store.prepare()
    with pytest.raises(NonceStateError):
        NonceSequence(store, KEY, FakeClock())


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty-file"),
        pytest.param(b"[1, 2]", id="list"),
        pytest.param(b"{}", id="no-ceiling"),
        pytest.param(b'{"ceiling": "1700000000000"}', id="string-ceiling"),
        pytest.param(b'{"ceiling": 1.7e12}', id="float-ceiling"),
        pytest.param(b'{"ceiling": -1}', id="negative"),
        pytest.param(b'{"ceiling": 9223372036854775808}', id="above-int64"),
        pytest.param(b'{"ceiling": null}', id="null"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary"),
    ],
)
def test_malformed_state_file_is_nonce_state_error(tmp_path: Path, content: bytes) -> None:
    """A corrupt state file stops signing rather than silently restarting from zero."""
    store = _store(tmp_path)
    _state_file(store).write_bytes(content)
    with pytest.raises(NonceStateError):
        NonceSequence(store, KEY, FakeClock())


def test_boolean_ceiling_is_malformed(tmp_path: Path) -> None:
    """`{"ceiling": true}` is malformed state, not a ceiling of 1."""
    store = _store(tmp_path)
    _state_file(store).write_text('{"ceiling": true}')
    with pytest.raises(NonceStateError):
        store.load(key_id(KEY))


def test_state_file_holds_ceiling_and_mode_0600(tmp_path: Path) -> None:
    """The state file is JSON with the ceiling and is private to the daemon user."""
    store = _store(tmp_path)
    store.save(key_id(KEY), 12345)
    path = _state_file(store)
    assert json.loads(path.read_text())["ceiling"] == 12345
    assert path.stat().st_mode & 0o777 == 0o600
    assert store.load(key_id(KEY)) == 12345


def test_missing_state_file_starts_from_zero(tmp_path: Path) -> None:
    """No state file yet means nothing was ever sent with this key by us."""
    assert _store(tmp_path).load(key_id(KEY)) == 0


async def test_key_id_never_contains_the_key(tmp_path: Path) -> None:
    """The API key appears neither in its id, the state file name, nor the file's content."""
    kid = key_id(KEY)
    assert KEY not in kid
    assert KEY[2:] not in kid
    assert kid == key_id(KEY)
    assert kid != key_id(OTHER_KEY)
    store = _store(tmp_path)
    await NonceSequence(store, KEY, FakeClock()).next()
    for path in store.directory.iterdir():
        assert KEY[2:12] not in path.name
        assert KEY[2:12] not in path.read_text()


async def test_keys_have_independent_sequences(tmp_path: Path) -> None:
    """Two API keys keep separate counters and separate state files."""
    store = _store(tmp_path)
    a = NonceSequence(store, KEY, FakeClock())
    for _ in range(5):
        await a.next()
    b = NonceSequence(store, OTHER_KEY, FakeClock())
    assert await b.next() == T0
    assert _state_file(store, KEY) != _state_file(store, OTHER_KEY)


def test_nonce_book_shares_one_sequence_per_key(tmp_path: Path) -> None:
    """Accounts that use the same key share its sequence; the book creates the nonces dir."""
    book = nonce_mod.NonceBook(tmp_path, FakeClock())
    assert book.sequence(KEY) is book.sequence(KEY)
    assert book.sequence(KEY) is not book.sequence(OTHER_KEY)
    assert (tmp_path / "nonces").is_dir()


async def test_concurrent_callers_get_distinct_increasing_nonces_in_lock_order(tmp_path: Path) -> None:
    """200 tasks taking the lock get 200 distinct nonces, increasing in the order they got the lock."""
    store = _store(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    order: list[tuple[int, int]] = []

    async def worker(i: int) -> None:
        async with seq.lock:
            clock.now = T0 + (i * 7919) % 500 * 100  # the clock jumps around while tasks wait
            order.append((i, await seq.next()))

    await asyncio.gather(*(worker(i) for i in range(200)))
    values = [n for _, n in order]
    assert len(set(values)) == 200
    assert values == sorted(values)
    assert [i for i, _ in order] == list(range(200))  # FIFO: acquisition order is arrival order
    assert _persisted(store) >= values[-1]


def test_a_second_daemon_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    """Two daemons sharing one state_dir would overwrite each other's ceilings: the second is refused."""
    first = _store(tmp_path)
    with pytest.raises(NonceStateError, match="another exmo-proxy"):
        NonceStore(tmp_path).prepare()
    first.release()
    NonceStore(tmp_path).prepare()


def test_a_late_save_never_lowers_the_ceiling(tmp_path: Path) -> None:
    """An abandoned save that finishes after a newer one cannot move the ceiling down."""
    store = _store(tmp_path)
    store.save(key_id(KEY), T0 + 2 * WINDOW)
    store.save(key_id(KEY), T0 + WINDOW)  # the late, older write
    assert store.load(key_id(KEY)) == T0 + 2 * WINDOW


class GatedStore(CountingStore):
    """A store whose writes wait for `gate` (a slow disk), in the worker thread like real ones."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.gate = threading.Event()
        self.gate.set()
        self.started: list[int] = []

    def save(self, kid: str, ceiling: int) -> None:
        self.started.append(ceiling)
        assert self.gate.wait(10)
        super().save(kid, ceiling)


def _gated(tmp_path: Path) -> GatedStore:
    store = GatedStore(tmp_path)
    store.prepare()
    return store


async def test_calls_do_not_wait_for_a_slow_write_ahead(tmp_path: Path) -> None:
    """While the next ceiling is on its way to a slow disk, nonces below the durable one are handed out
    at once; only the call that finds every durable number used waits, and gets one above the old
    ceiling once the write lands."""
    store = _gated(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    await seq.next()
    durable = seq.ceiling
    store.gate.clear()  # the disk stalls
    clock.now = durable - AHEAD + 1
    for _ in range(AHEAD):  # every remaining number, with no wait
        await asyncio.wait_for(seq.next(), 0.5)
    assert seq.last == durable and len(store.started) == 2
    waiting = asyncio.ensure_future(seq.next())
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing above the durable ceiling without the write
    store.gate.set()
    issued = await asyncio.wait_for(waiting, 5)
    assert issued == durable + 1 <= _persisted(store) == durable + WINDOW


async def test_an_idle_key_uses_the_numbers_left_while_its_next_ceiling_is_written(tmp_path: Path) -> None:
    """The clock ran past the ceiling while the key was idle: the next nonces are the numbers left
    below it (still increasing), and the clock again once the new ceiling is durable."""
    store = _gated(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    first = await seq.next()
    store.gate.clear()
    clock.now = T0 + 60_000  # a minute idle
    assert await asyncio.wait_for(seq.next(), 0.5) == first + 1
    assert await asyncio.wait_for(seq.next(), 0.5) == first + 2
    store.gate.set()
    await seq.settle()
    assert seq.ceiling == T0 + 60_000 + WINDOW
    assert await seq.next() == T0 + 60_000


async def test_no_nonce_above_the_durable_ceiling_whatever_the_clock_and_the_disk(tmp_path: Path) -> None:
    """Random clock jumps (forwards and back), random disk stalls: every nonce is above the last and at
    or below the ceiling on disk when it is handed out; a restart resumes above all of them."""
    rng = random.Random(15)  # noqa: S311 - a reproducible test schedule
    store = _gated(tmp_path)
    clock = FakeClock()
    seq = NonceSequence(store, KEY, clock)
    issued: list[int] = []

    async def disk() -> None:
        while True:
            store.gate.clear() if rng.random() < 0.5 else store.gate.set()
            await asyncio.sleep(rng.random() * 0.01)

    stalls = asyncio.ensure_future(disk())
    try:
        for _ in range(2_000):
            clock.now += rng.choice((0, 1, 7, 900, 2 * AHEAD, -3 * WINDOW))
            nonce = await seq.next()
            assert nonce <= _persisted(store)
            assert not issued or nonce > issued[-1]
            issued.append(nonce)
    finally:
        stalls.cancel()
        store.gate.set()
    await seq.settle()
    assert await NonceSequence(_restarted(store, tmp_path), KEY, FakeClock()).next() > issued[-1]


async def test_the_book_settles_writes_in_flight_before_closing(tmp_path: Path) -> None:
    """Shutdown waits for a ceiling write in flight before the state directory's lock is let go."""
    clock = FakeClock()
    book = nonce_mod.NonceBook(tmp_path, clock)
    seq = book.sequence(KEY)
    await seq.next()
    ceiling = seq.ceiling
    clock.now = ceiling  # past half the window: the next ceiling goes to the disk in the background
    await seq.next()
    await book.settle()
    book.close()
    assert NonceStore(tmp_path).load(key_id(KEY)) == ceiling + WINDOW
