"""The Redis batcher (proxy/coord/batch.py) and lease hand-back against a real redis-server.

Commands started in one pass share one connection and one round trip, each with its own reply; a batch
cut off by the time bound leaves nothing behind on its connection for the next one to misread; a lease
whose waiter gave up is given back.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from proxy.calls.lease import LINGER_S, Lease
from proxy.calls.nonce import NonceBook
from proxy.calls.nonce_store import key_id
from proxy.calls.shared_rate import SharedRateLimiter
from proxy.config.coordination import parse_url
from proxy.coord.client import Coordinator
from proxy.coord.keys import CoordinationUnavailable, key_for
from tests.redis_stack import REDIS_MARKS, Redis, start_redis

pytestmark = REDIS_MARKS


def _cli(redis: Redis, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(redis.port), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def _coordinator(redis: Redis, timeout_s: float = 0.5) -> Coordinator:
    settings = parse_url(redis.url)
    return Coordinator(type(settings)(url=settings.url, timeout_s=timeout_s))


def _no_orphan(found: Any) -> None:
    """These calls wait for their TAKE: nothing is orphaned."""


def _clients(redis: Redis) -> int:
    return len([line for line in _cli(redis, "CLIENT", "LIST").splitlines() if "cmd=client" not in line])


def test_commands_of_one_pass_share_a_round_trip(redis_server: Redis) -> None:
    async def go() -> list[Any]:
        coordinator = _coordinator(redis_server)
        await coordinator.start()
        try:
            await coordinator.set("one", "1", 60)
            found = await asyncio.gather(
                coordinator.get("one"), coordinator.set("two", "2", 60, only_new=True),
                coordinator.set("one", "x", 60, only_new=True), coordinator.get("nothing"),
                coordinator.delete_if("gone", "x"))
            # the first goes at once, the four started beside it together: two connections, not five
            return [*found, _clients(redis_server)]
        finally:
            await coordinator.close()

    assert asyncio.run(go()) == [b"1", True, False, None, None, 2]
    assert _cli(redis_server, "GET", "two") == "2"


def test_a_batch_cut_off_leaves_no_reply_behind(redis_server: Redis) -> None:
    """The time bound runs out while Redis holds the replies (CLIENT PAUSE): the waiters are refused;
    the next batch on the same connection reads its own replies, not the late ones."""
    _cli(redis_server, "SET", "a", "A")
    _cli(redis_server, "SET", "b", "B")

    async def go() -> tuple[bytes, bytes]:
        coordinator = _coordinator(redis_server, timeout_s=0.2)
        await coordinator.start()
        try:
            _cli(redis_server, "CLIENT", "PAUSE", "600", "ALL")
            with pytest.raises(CoordinationUnavailable, match="timed out"):
                await coordinator.get("a")
            assert coordinator.problem is not None
            await asyncio.sleep(0.7)
            return await coordinator.get("b"), await coordinator.get("a")
        finally:
            await coordinator.close()

    assert asyncio.run(go()) == (b"B", b"A")


def test_a_lease_whose_waiter_gave_up_is_given_back(redis_server: Redis, tmp_path: Path) -> None:
    """A call that stops waiting (cancelled) while its TAKE is on its way: the lease the script took is
    released as soon as the reply comes, not left to its TTL; a call that got its lease releases it
    once its release has lingered (LINGER_S) with no next call on the key."""
    api_key = "K-" + "0" * 40
    lease_key = key_for(key_id(api_key), "lease")

    async def go() -> list[int]:
        coordinator = _coordinator(redis_server)
        await coordinator.start()
        book = NonceBook(tmp_path)
        sequence = book.sequence(api_key)
        limiter = SharedRateLimiter(coordinator, 100.0)
        lease = Lease(coordinator, api_key)
        try:
            deadline = asyncio.get_running_loop().time() + 5
            taking = asyncio.ensure_future(lease.take(sequence, deadline, "main", limiter, 30.0))
            await asyncio.sleep(0)  # the TAKE is queued, its batch starts
            await asyncio.sleep(0)  # and is on its way
            taking.cancel()
            await asyncio.sleep(0.3)
            exists = [int(_cli(redis_server, "EXISTS", lease_key))]
            await lease.take(sequence, deadline, "main", limiter, 30.0)
            exists.append(int(_cli(redis_server, "EXISTS", lease_key)))
            lease.release()
            await asyncio.sleep(LINGER_S + 0.2)
            exists.append(int(_cli(redis_server, "EXISTS", lease_key)))
            return exists
        finally:
            await coordinator.close()
            await book.settle()
            book.close()

    assert asyncio.run(go()) == [0, 1, 0]


def test_a_late_take_changes_nothing(redis_server: Redis) -> None:
    """A TAKE that reaches Redis after this daemon's next call on the key took the lease (its call
    gave up, the next went ahead) neither takes that lease over nor frees it."""
    keys = ["{k}:lease", "{k}:nonce", "{k}:want"]

    async def go() -> tuple[int, int, str]:
        coordinator = _coordinator(redis_server)
        await coordinator.start()
        try:
            newer, older = coordinator.owner + "12", coordinator.owner + "9"
            first = await coordinator.take(keys, newer, 1000, 60_000, 1, 10**6, 50, orphan=_no_orphan)
            late = await coordinator.take(keys, older, 1000, 60_000, 1, 10**6, 50, orphan=_no_orphan)
            return first[0], late[0], _cli(redis_server, "GET", keys[0])
        finally:
            await coordinator.close()

    taken, late, holder = asyncio.run(go())
    assert (taken, late) == (1, 0)
    assert holder.endswith(":12")


def test_a_replica_is_a_problem_not_an_answer(redis_server: Redis, tmp_path: Path) -> None:
    """Pointed at a replica (a failover behind a plain URL): its reads would pass, but signed calls
    need writes: the health check reports the problem and a TAKE is refused, not answered."""
    replica = start_redis(tmp_path / "replica")
    try:
        _cli(replica, "REPLICAOF", "127.0.0.1", str(redis_server.port))

        async def go() -> tuple[str | None, str]:
            coordinator = _coordinator(replica)
            await coordinator.start()
            try:
                with pytest.raises(CoordinationUnavailable) as refused:
                    await coordinator.take(["{k}:lease", "{k}:nonce", "{k}:want"], coordinator.owner + "1",
                                           1000, 60_000, 1, 10**6, 50, orphan=_no_orphan)
                return coordinator.problem, str(refused.value)
            finally:
                await coordinator.close()

        problem, refusal = asyncio.run(go())
        assert problem is not None and "ReadOnlyError" in problem
        assert "ReadOnlyError" in refusal
    finally:
        replica.stop()
