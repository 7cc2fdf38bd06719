"""SharedReads: single flight and the optional TTL cache for public market data (proxy/market.py)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.calls.shared_reads import SharedReads
from proxy.upstream.client import UpstreamResponse

OK = UpstreamResponse(200, b"{}", "application/json")
KEY = ("GET", "/v1.1/ticker", "")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    def __init__(self, answer: UpstreamResponse = OK, fail: bool = False) -> None:
        self.calls = 0
        self.answer, self.fail = answer, fail
        self.release = asyncio.Event()

    async def fetch(self) -> UpstreamResponse:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("upstream down")
        return self.answer


async def test_identical_requests_in_flight_share_one_call() -> None:
    """Ten simultaneous identical reads cost one upstream call and all get its answer."""
    shared, upstream = SharedReads({}), Upstream()
    waiters = [asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch)) for _ in range(10)]
    await asyncio.sleep(0)
    upstream.release.set()
    assert await asyncio.gather(*waiters) == [OK] * 10
    assert upstream.calls == 1
    await shared.get("ticker", KEY, upstream.fetch)  # no TTL: the next one goes out again
    assert upstream.calls == 2


async def test_different_requests_do_not_share() -> None:
    """Another query is another call."""
    shared, upstream = SharedReads({}), Upstream()
    upstream.release.set()
    await asyncio.gather(shared.get("order_book", ("GET", "/v1.1/order_book", "pair=A"), upstream.fetch),
                         shared.get("order_book", ("GET", "/v1.1/order_book", "pair=B"), upstream.fetch))
    assert upstream.calls == 2


@pytest.mark.parametrize(("answer", "cached"),
                         [(OK, True), (UpstreamResponse(502, b"x", "text/html"), False)])
async def test_ttl_cache_keeps_only_good_answers(answer: UpstreamResponse, cached: bool) -> None:
    """With a TTL a 200 is reused until it expires; an error answer is never reused."""
    clock = Clock()
    shared, upstream = SharedReads({"ticker": 1.0}, clock), Upstream(answer)
    upstream.release.set()
    await shared.get("ticker", KEY, upstream.fetch)
    clock.now += 0.5
    await shared.get("ticker", KEY, upstream.fetch)
    assert upstream.calls == (1 if cached else 2)
    clock.now += 1.0
    await shared.get("ticker", KEY, upstream.fetch)
    assert upstream.calls == (2 if cached else 3)


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    """When the shared call fails, all its waiters see the error, and the next request tries again."""
    shared, upstream = SharedReads({"ticker": 10.0}), Upstream(fail=True)
    waiters = [asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    upstream.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    upstream.fail = False
    assert await shared.get("ticker", KEY, upstream.fetch) == OK


async def test_one_waiter_giving_up_does_not_cancel_the_others() -> None:
    """A cancelled waiter (client hung up) leaves the shared call running for the rest."""
    shared, upstream = SharedReads({}), Upstream()
    first = asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch))
    second = asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch))
    await asyncio.sleep(0)
    first.cancel()
    upstream.release.set()
    assert await second == OK
    assert upstream.calls == 1


@pytest.mark.parametrize("body", [b'{"result":false,"error":"Error 40034: Access is denied"}',
                                  b'{"error":{"code":"140434","msg":"x"}}', b'{"s":"error","errmsg":"x"}'])
async def test_exmo_errors_are_never_cached(body: bytes) -> None:
    """EXMO's HTTP-200 errors are not kept: the next request asks again."""
    upstream = Upstream(UpstreamResponse(200, body, "application/json"))
    shared = SharedReads({"ticker": 10.0})
    upstream.release.set()
    await shared.get("ticker", KEY, upstream.fetch)
    await shared.get("ticker", KEY, upstream.fetch)
    assert upstream.calls == 2


async def test_clear_drops_the_cache() -> None:
    """A reload clears cached answers (the TTL or the upstream may have changed)."""
    shared, upstream = SharedReads({"ticker": 10.0}), Upstream()
    upstream.release.set()
    await shared.get("ticker", KEY, upstream.fetch)
    shared.clear()
    await shared.get("ticker", KEY, upstream.fetch)
    assert upstream.calls == 2


async def test_a_read_that_must_be_current_skips_the_cache_but_joins_a_flight() -> None:
    """cached_ok=False (paper mode's books and trades): a kept answer is not used; an identical read
    in flight is (it is as current as a new one)."""
    shared, upstream = SharedReads({"ticker": 10.0}), Upstream()
    upstream.release.set()
    await shared.get("ticker", KEY, upstream.fetch)
    await shared.get("ticker", KEY, upstream.fetch)
    assert upstream.calls == 1  # kept
    await shared.get("ticker", KEY, upstream.fetch, cached_ok=False)
    assert upstream.calls == 2
    upstream.release.clear()
    waiting = [asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch, cached_ok=False)),
               asyncio.ensure_future(shared.get("ticker", KEY, upstream.fetch, cached_ok=False))]
    await asyncio.sleep(0)
    upstream.release.set()
    await asyncio.gather(*waiting)
    assert upstream.calls == 3
