"""Two daemons under load on one key share it; Redis losing its scripts costs nothing (issue 13).

Real daemons, a real redis-server, the simulator; helpers from test_e2e_redis.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

import aiohttp

from tests.conftest import Stack, curl_json
from tests.redis_stack import REDIS_MARKS, Redis, alternating, daemons, order

pytestmark = REDIS_MARKS


async def _flood(base: str, bots: int, seconds: float, first: int) -> list[int]:
    """`bots` clients sending orders back to back for `seconds`; the status of every answer."""
    stop = time.monotonic() + seconds

    async def bot(number: int) -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as session:
            client_id = first + number * 100_000
            while time.monotonic() < stop:
                client_id += 1
                statuses.append((await order(session, base, client_id))[0])
        return statuses

    return [s for batch in await asyncio.gather(*(bot(n) for n in range(bots))) for s in batch]


def test_two_loaded_daemons_share_one_key(make_stack: Callable[..., Stack], redis_server: Redis) -> None:
    """Both daemons keep a queue of calls on the key for 4 s: neither holds on to the key's lease while
    the other waits (a daemon that wants the key gets the next turn), so both get a fair share, with
    0 x 40009 and no call refused."""
    stack = make_stack(delay_ms=4)
    first, second = daemons(stack, redis_server, 2)

    async def both() -> tuple[list[int], list[int]]:
        return await asyncio.gather(_flood(first.url, 4, 4.0, 1), _flood(second.url, 4, 4.0, 10_000_000))

    try:
        ones, twos = asyncio.run(both())
        assert set(ones) | set(twos) == {200}, (sorted(set(ones)), sorted(set(twos)))
        total = len(ones) + len(twos)
        assert total >= 100, total  # the key was kept busy
        assert min(len(ones), len(twos)) >= 0.3 * total, (len(ones), len(twos))
        assert stack.sim_stats()["errors"].get("40009", 0) == 0
    finally:
        for service in (first, second):
            service.kill9()


def test_redis_that_lost_its_scripts_loads_them_again(make_stack: Callable[..., Stack],
                                                      redis_server: Redis) -> None:
    """SCRIPT FLUSH (as after a failover to a replica that never had them): the next calls find the
    scripts missing (NOSCRIPT: not run), load them and go on, with nothing refused."""
    stack = make_stack(delay_ms=2)
    first, second = daemons(stack, redis_server, 2)
    try:
        bases = [first.url, second.url]
        assert all(a[0] == 200 for a in asyncio.run(alternating(bases, clients=3, calls=4)))
        flushed = subprocess.run(["redis-cli", "-p", str(redis_server.port), "SCRIPT", "FLUSH"],
                                 capture_output=True, text=True, check=True)
        assert flushed.stdout.strip() == "OK"
        answers = asyncio.run(alternating(bases, clients=3, calls=4, first=500))
        assert all(a[0] == 200 and a[1].get("result") is True for a in answers), answers[:2]
        assert curl_json(f"{first.url}/readyz")[0] == 200
        assert stack.sim_stats()["errors"].get("40009", 0) == 0
    finally:
        for service in (first, second):
            service.kill9()
