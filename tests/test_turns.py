"""The per-key turn: first come first served, bounded waits, and no turn lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from proxy.calls.turns import Turn


async def test_a_free_turn_is_taken_at_once_even_with_no_patience() -> None:
    turn = Turn()
    await turn.acquire(0)
    assert turn.locked()
    turn.release()
    assert not turn.locked()


async def test_waiters_get_the_turn_in_arrival_order() -> None:
    turn = Turn()
    order: list[int] = []

    async def worker(number: int) -> None:
        await turn.acquire(5)
        order.append(number)
        await asyncio.sleep(0)
        turn.release()

    await asyncio.gather(*(worker(n) for n in range(50)))
    assert order == list(range(50)) and not turn.locked()


async def test_a_wait_past_its_bound_times_out_and_leaves_the_queue() -> None:
    turn = Turn()
    await turn.acquire()
    with pytest.raises(TimeoutError):
        await turn.acquire(0.05)
    later = asyncio.ensure_future(turn.acquire(5))
    await asyncio.sleep(0)
    turn.release()  # goes to the waiter that is still waiting, not to the one that gave up
    await asyncio.wait_for(later, 1)
    assert turn.locked()
    turn.release()
    assert not turn.locked()


async def test_a_turn_handed_to_a_cancelled_waiter_passes_on() -> None:
    turn = Turn()
    await turn.acquire()
    first = asyncio.ensure_future(turn.acquire(5))
    second = asyncio.ensure_future(turn.acquire(5))
    await asyncio.sleep(0)
    turn.release()  # handed to `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(second, 1)  # the turn reached `second` instead of being lost
    assert first.cancelled() and turn.locked()
    turn.release()
    assert not turn.locked()


async def test_a_newcomer_cannot_overtake_a_handed_over_turn() -> None:
    turn = Turn()
    await turn.acquire()
    waiting = asyncio.ensure_future(turn.acquire(5))
    await asyncio.sleep(0)
    turn.release()  # handed to `waiting`, which has not run yet
    with pytest.raises(TimeoutError):
        await turn.acquire(0)  # not free: the bound applies
    await waiting
    turn.release()


async def test_async_with() -> None:
    turn = Turn()
    async with turn:
        assert turn.locked()
    assert not turn.locked()


async def test_a_stopped_turn_refuses_waiters_now_and_later() -> None:
    """stop(): every waiter is refused at once, a later call that would wait too; the holder keeps it."""
    turn = Turn()
    await turn.acquire()
    waiter = asyncio.ensure_future(turn.acquire(30))
    await asyncio.sleep(0)
    turn.stop(lambda: RuntimeError("stopped"))
    with pytest.raises(RuntimeError):
        await waiter
    with pytest.raises(RuntimeError):
        await turn.acquire(30)
    assert turn.locked()
    turn.release()
    await turn.acquire(30)  # a free turn is still taken: the caller's own check refuses it after
