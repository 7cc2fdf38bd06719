"""The outbound rate limit: calls spaced 1/rate apart, impatient callers refused with a retry time."""

from __future__ import annotations

import asyncio
import time

import pytest

from proxy.calls.ratelimit import RateLimited, RateLimiter

T0 = 1000.0


class FakeClock:
    """A settable monotonic clock in seconds."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "interval"),
    [
        pytest.param(10.0, 0.11, id="exmo-10-per-second"),
        pytest.param(4.0, 0.275, id="four-per-second"),
        pytest.param(0.5, 2.2, id="slower-than-one"),
    ],
)
def test_back_to_back_calls_are_spaced_one_interval_apart(rate: float, interval: float) -> None:
    """Calls made at the same instant are given slots 1.1/rate apart (no burst, 10% jitter margin)."""
    limiter = RateLimiter(rate, FakeClock())
    waits = [limiter.reserve(max_wait_s=60) for _ in range(5)]
    assert waits == pytest.approx([i * interval for i in range(5)])


def test_first_call_goes_out_at_once() -> None:
    """An idle limiter lets the first call through without waiting."""
    assert RateLimiter(10, FakeClock()).reserve(max_wait_s=0) == 0


def test_idle_time_does_not_bank_a_burst() -> None:
    """After a long pause the next calls are still spaced, not sent in a burst."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock)
    limiter.reserve(max_wait_s=1)
    clock.now += 3600
    assert limiter.reserve(max_wait_s=1) == 0
    assert limiter.reserve(max_wait_s=1) == pytest.approx(0.11)


def test_calls_already_spaced_never_wait() -> None:
    """Callers that arrive at least one interval apart are never delayed."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock)
    for _ in range(20):
        assert limiter.reserve(max_wait_s=0) == 0
        clock.now += 0.11


def test_no_window_of_one_second_sees_more_than_rate_calls() -> None:
    """With 50 simultaneous callers, any 1-second window holds at most `rate` send times."""
    limiter = RateLimiter(10, FakeClock())
    sends = [T0 + limiter.reserve(max_wait_s=60) for _ in range(50)]
    for start in sends:
        assert sum(1 for s in sends if start <= s < start + 1.0 - 1e-9) <= 10


def test_wait_beyond_max_wait_is_refused_with_retry_after() -> None:
    """A caller whose slot is further away than max_wait is refused with the time until its slot."""
    limiter = RateLimiter(10, FakeClock())
    for _ in range(6):
        limiter.reserve(max_wait_s=1)
    with pytest.raises(RateLimited) as info:
        limiter.reserve(max_wait_s=0.5)
    assert info.value.retry_after_s == pytest.approx(0.66)
    assert "retry after 0.7s" in str(info.value)


def test_refused_caller_does_not_take_a_slot() -> None:
    """A refusal leaves the schedule unchanged for the next, more patient caller."""
    limiter = RateLimiter(10, FakeClock())
    limiter.reserve(max_wait_s=1)
    limiter.reserve(max_wait_s=1)
    with pytest.raises(RateLimited):
        limiter.reserve(max_wait_s=0)
    assert limiter.reserve(max_wait_s=1) == pytest.approx(0.22)


def test_retrying_after_retry_after_succeeds() -> None:
    """Coming back after retry_after_s, the refused caller gets a slot within its patience."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock)
    for _ in range(20):
        limiter.reserve(max_wait_s=5)
    with pytest.raises(RateLimited) as info:
        limiter.reserve(max_wait_s=1)
    clock.now += info.value.retry_after_s
    assert limiter.reserve(max_wait_s=1) <= 1


def test_wait_exactly_max_wait_is_accepted() -> None:
    """max_wait is inclusive: a wait equal to it is not refused."""
    limiter = RateLimiter(2, FakeClock())
    limiter.reserve(max_wait_s=0)
    assert limiter.reserve(max_wait_s=limiter.interval) == pytest.approx(limiter.interval)


@pytest.mark.parametrize(
    ("retry_after_s", "header"),
    [
        pytest.param(0.0, "1", id="zero-is-one"),
        pytest.param(0.05, "1", id="tiny-rounds-up-to-one"),
        pytest.param(1.0, "1", id="exact-second"),
        pytest.param(1.01, "2", id="rounds-up"),
        pytest.param(29.9, "30", id="near-max-wait"),
        pytest.param(30.0, "30", id="whole"),
    ],
)
def test_retry_after_header_rounds_up_to_at_least_one(retry_after_s: float, header: str) -> None:
    """Retry-After is whole seconds, rounded up, never 0 (a client must not retry at once)."""
    assert RateLimited(retry_after_s).retry_after_header == header


async def test_acquire_sleeps_until_the_slot() -> None:
    """acquire() really waits out the spacing on the event loop (real clock, short interval)."""
    limiter = RateLimiter(50)  # 20 ms apart
    started = time.monotonic()
    for _ in range(4):
        await limiter.acquire(max_wait_s=1)
    assert time.monotonic() - started >= 3 * 0.02 - 0.005


async def test_acquire_refuses_without_sleeping() -> None:
    """acquire() raises RateLimited at once rather than queueing past max_wait."""
    limiter = RateLimiter(1)
    await limiter.acquire(max_wait_s=0)
    started = time.monotonic()
    with pytest.raises(RateLimited):
        await limiter.acquire(max_wait_s=0.5)
    assert time.monotonic() - started < 0.25


async def test_a_pause_voids_slots_already_handed_out() -> None:
    """Calls asleep in the queue when EXMO says 'pause' do not wake up and send into the ban."""
    limiter = RateLimiter(50)  # 22 ms apart
    loop = asyncio.get_running_loop()
    sent: list[float] = []

    async def call() -> None:
        await limiter.acquire(max_wait_s=5)
        sent.append(loop.time())

    tasks = [asyncio.ensure_future(call()) for _ in range(6)]
    await asyncio.sleep(0.03)  # the first one or two have gone out
    paused_at = loop.time()
    limiter.pause(0.3)
    await asyncio.gather(*tasks)
    during = [t for t in sent if paused_at < t < paused_at + 0.29]
    assert not during, f"{len(during)} calls were sent during the pause"


async def test_a_stopped_limiter_ends_every_wait_and_refuses_later_calls() -> None:
    """At the drain's cutoff a call sleeping for its slot is refused at once, and so is any later one
    (it must not start a new wait that nothing would end)."""
    limiter = RateLimiter(1.0)
    await limiter.acquire(5)  # takes the free slot; the next waits ~1.1 s
    waiting = asyncio.ensure_future(limiter.acquire(5))
    await asyncio.sleep(0.01)
    limiter.stop(lambda: RuntimeError("stopped"))
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(waiting, 0.1)
    with pytest.raises(RuntimeError):
        await limiter.acquire(5)
