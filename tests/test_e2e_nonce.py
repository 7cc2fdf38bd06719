"""Nonce ordering end to end: concurrency, kill -9, a foreign nonce, a clock stepped back (SPEC §7).

The simulator processes requests after a random delay, as EXMO checks nonces in processing order
(exmo-api.md §3, ccxt#24065); it counts every executed call by client_id and every 40009 it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.client
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.conftest import NonceDisk, Stack, start_daemon

pytestmark = pytest.mark.slow


async def _order(session: aiohttp.ClientSession, base: str, client_id: int) -> tuple[int, dict[str, Any]]:
    form = {"pair": "BTC_USDT", "quantity": "0.0001", "price": "20000", "type": "buy",
            "client_id": str(client_id)}
    async with session.post(f"{base}/v1.1/order_create", data=form) as resp:
        return resp.status, await resp.json(content_type=None)


async def _client(base: str, ids: range) -> list[tuple[int, dict[str, Any]]]:
    async with aiohttp.ClientSession() as session:
        return [await _order(session, base, client_id) for client_id in ids]


async def _burst(base: str, clients: int, calls: int, first_id: int = 1) -> list[tuple[int, dict[str, Any]]]:
    tasks = [_client(base, range(first_id + c * calls, first_id + (c + 1) * calls)) for c in range(clients)]
    return [answer for answers in await asyncio.gather(*tasks) for answer in answers]


def _assert_all_ok(answers: list[tuple[int, dict[str, Any]]]) -> None:
    bad = [a for a in answers if a[0] != 200 or a[1].get("result") is not True]
    assert not bad, bad[:3]


def _nonce_errors(stack: Stack) -> int:
    return int(stack.sim_stats()["errors"].get("40009", 0))


def test_concurrent_clients_never_see_40009(make_stack) -> None:  # type: ignore[no-untyped-def]
    """20 clients x 50 orders with out-of-order processing: no 40009, each order executed once."""
    stack = make_stack(delay_ms=20)
    answers = asyncio.run(_burst(stack.base, clients=20, calls=50))
    _assert_all_ok(answers)
    stats = stack.sim_stats()
    assert stats["errors"].get("40009", 0) == 0
    assert stats["client_ids"] == {str(i): 1 for i in range(1, 1001)}


def _sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha512).hexdigest()


def _foreign_call(stack: Stack, nonce: int) -> dict[str, Any]:
    """Another program using the same key directly, with its own nonce."""
    body = urlencode({"nonce": nonce})

    async def go() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.post(
            f"{stack.sim.url}/v1.1/user_info", data=body.encode(),
            headers={"Key": stack.key, "Sign": _sign(stack.secret, body),
                     "Content-Type": "application/x-www-form-urlencoded"},
        ) as resp:
            return await resp.json(content_type=None)  # type: ignore[no-any-return]

    return asyncio.run(go())


def test_foreign_nonce_far_ahead_then_kill9_restart(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A key pushed far ahead by another program: one call resyncs and runs once; kill -9 keeps it."""
    stack = make_stack(delay_ms=5)
    far = time.time_ns() // 1_000_000 + 10**9
    assert "balances" in _foreign_call(stack, far)
    status, body = asyncio.run(_burst(stack.base, clients=1, calls=1, first_id=1))[0]
    assert status == 200 and body["result"] is True, body
    assert _nonce_errors(stack) == 1  # the one 40009 the resync needed
    assert stack.sim_stats()["client_ids"] == {"1": 1}
    assert "nonce resync" in stack.logs()

    async def load_then_kill() -> list[tuple[int, dict[str, Any]]]:
        burst = asyncio.ensure_future(_burst(stack.base, clients=5, calls=40, first_id=100))
        await asyncio.sleep(0.4)
        stack.daemon.kill9()
        return await asyncio.gather(burst, return_exceptions=True)  # type: ignore[return-value]

    asyncio.run(load_then_kill())
    stack.daemon = start_daemon(stack)
    answers = asyncio.run(_burst(stack.base, clients=5, calls=20, first_id=1000))
    _assert_all_ok(answers)
    assert _nonce_errors(stack) == 1, "a restarted daemon reused or lowered a nonce"
    counts = stack.sim_stats()["client_ids"]
    assert all(counts[str(i)] == 1 for i in range(1000, 1100))
    assert max(counts.values()) == 1


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (apt-get install faketime)")
def test_clock_stepped_back_keeps_nonces_rising(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Restarted with the wall clock a day behind, the daemon still signs above its last nonce."""
    stack = make_stack()
    _assert_all_ok(asyncio.run(_burst(stack.base, clients=2, calls=5, first_id=1)))
    stack.daemon.stop()
    env_prefix = ["faketime", "-f", "-1d"]
    stack.daemon = start_daemon(stack, wrap=env_prefix)
    _assert_all_ok(asyncio.run(_burst(stack.base, clients=2, calls=5, first_id=100)))
    assert _nonce_errors(stack) == 0
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    assert yesterday in stack.logs(), "faketime did not step the daemon's clock back"


def test_fifty_clients_forty_calls_each(make_stack) -> None:  # type: ignore[no-untyped-def]
    """50 clients x 40 orders, processed out of order upstream: no 40009, each executed exactly once."""
    stack = make_stack(delay_ms=8)
    answers = asyncio.run(_burst(stack.base, clients=50, calls=40))
    _assert_all_ok(answers)
    stats = stack.sim_stats()
    assert stats["errors"].get("40009", 0) == 0
    assert stats["client_ids"] == {str(i): 1 for i in range(1, 2001)}


def _slow_disk_daemon(stack: Stack) -> Path:
    """Restart the daemon with every nonce-ceiling write slowed to 500 ms; returns the writes' log."""
    stack.daemon.stop()
    disk = NonceDisk(stack.tmp, delay_s=0.5)
    stack.daemon = start_daemon(stack, env=disk.env())
    return disk.log


def _writes(log: Path) -> list[tuple[str, float]]:
    if not log.exists():
        return []
    return [(kind, float(at)) for kind, at in (line.split() for line in log.read_text().splitlines())]


@contextlib.contextmanager
def _connection(stack: Stack) -> Iterator[Callable[[], tuple[int, dict[str, Any]]]]:
    """One kept-alive connection to the daemon; each call() is a user_info."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.daemon.port, timeout=10)

    def call() -> tuple[int, dict[str, Any]]:
        connection.request("POST", "/v1.1/user_info", body=b"",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    try:
        yield call
    finally:
        connection.close()


def _ceiling(stack: Stack) -> int:
    (state,) = (stack.tmp / "exmo-proxy-state" / "nonces").glob("*.json")
    return int(json.loads(state.read_text())["ceiling"])


def test_calls_keep_flowing_while_a_slow_disk_writes_the_next_ceiling(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Every ceiling write takes 500 ms: only the first call after the start waits for one; the write
    ahead (half a window later) happens while calls go on, none of them waiting for it."""
    stack = make_stack()
    log = _slow_disk_daemon(stack)
    timings: list[tuple[float, float]] = []  # (sent, answered), monotonic, as the writes log has them
    with _connection(stack) as call:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sent = time.monotonic()
            status, answer = call()
            assert status == 200 and "balances" in answer, answer
            timings.append((sent, time.monotonic()))
            writes = _writes(log)
            if len(writes) >= 4 and time.monotonic() > writes[3][1] + 0.2:  # two writes, done
                break
    _, (_, first_end), (_, ahead_start), (_, ahead_end) = _writes(log)[:4]
    assert timings[0][1] >= first_end  # the first call after a start waits: the state may all be used
    during = [answered - sent for sent, answered in timings if ahead_start <= sent and answered <= ahead_end]
    assert len(during) >= 5, "calls stopped while the next ceiling was being written"
    slowest = max(answered - sent for sent, answered in timings[1:])
    assert slowest < 0.4, f"a call waited {slowest:.3f} s: it waited for the disk"
    assert stack.sim_stats()["errors"].get("40009", 0) == 0
    assert "Traceback" not in stack.logs()


def test_kill9_during_a_slow_ceiling_write_resumes_above_the_old_ceiling(make_stack) -> None:  # type: ignore[no-untyped-def]
    """kill -9 while the next ceiling is on its way to the disk: the file still holds the old one, and
    the restarted daemon signs above it, with no 40009."""
    stack = make_stack()
    log = _slow_disk_daemon(stack)
    with _connection(stack) as call:
        deadline = time.monotonic() + 20
        while len(_writes(log)) < 3 and time.monotonic() < deadline:  # until the write ahead starts
            assert call()[0] == 200
    assert [kind for kind, _ in _writes(log)] == ["start", "end", "start"]
    old_ceiling = _ceiling(stack)
    stack.daemon.kill9()  # the write ahead is inside its 500 ms fsync
    assert _ceiling(stack) == old_ceiling  # it never landed
    used_before = stack.sim_stats()["last_nonce"][stack.key]
    assert used_before <= old_ceiling
    audited = len((stack.tmp / "exmo-proxy-state" / "audit.jsonl").read_text().splitlines())
    stack.daemon = start_daemon(stack)
    _assert_all_ok(asyncio.run(_burst(stack.base, clients=3, calls=10, first_id=5000)))
    lines = (stack.tmp / "exmo-proxy-state" / "audit.jsonl").read_text().splitlines()[audited:]
    nonces = [json.loads(line)["nonce"] for line in lines]
    assert len(nonces) == 30 and min(nonces) > old_ceiling  # resumed above the durable ceiling
    assert _nonce_errors(stack) == 0
