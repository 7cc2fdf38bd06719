"""Redis for the tests: a throwaway redis-server on loopback, and daemons sharing it (issue 13)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Service, Stack, free_port, start

REDIS_MARKS = [pytest.mark.slow, pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server (apt-get install redis-server)")]


@dataclass
class Redis:
    port: int
    proc: subprocess.Popen[bytes]
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_redis(folder: Path, port: int | None = None, password: str | None = None) -> Redis:
    """A throwaway redis-server on loopback: no persistence, so a restart comes back empty. With
    `password`, clients must AUTH (set in a file, not on redis-server's command line)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = folder / "redis.conf"
    conf.write_text(f"requirepass {password}\n" if password else "")
    with (folder / "redis.log").open("ab") as log:
        proc = subprocess.Popen(["redis-server", str(conf), "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(folder)], stdout=log,
                                stderr=subprocess.STDOUT)
    env = {**os.environ, "REDISCLI_AUTH": password} if password else None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True,
                              check=False, env=env)
        if ping.stdout.strip() == "PONG":
            return Redis(port, proc, folder)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"redis-server did not start; see {folder / 'redis.log'}")


def daemons(stack: Stack, redis: Redis, count: int, configured: bool = False) -> list[Service]:
    """`count` daemons on one config (one key) sharing `redis` (`configured`: the config names it
    already), each with its own state_dir and port."""
    if not configured:
        stack.config.write_text(stack.config.read_text() + f"redis: {{url: '{redis.url}'}}\n")
    stack.daemon.stop()
    started = []
    for number in range(count):
        port = free_port()
        started.append(start(["run", "--config", str(stack.config), "--passphrase-file",
                              str(stack.passphrase_file), "--listen", f"127.0.0.1:{port}", "--upstream",
                              stack.sim.url, "--state-dir", str(stack.tmp / f"state-{number}")],
                             port, stack.tmp / f"daemon-{number}.log"))
    stack.extra["daemons"] = started
    return started


async def order(session: aiohttp.ClientSession, base: str, client_id: int) -> tuple[int, dict[str, Any]]:
    form = {"pair": "BTC_USDT", "quantity": "0.0001", "price": "20000", "type": "buy",
            "client_id": str(client_id)}
    async with session.post(f"{base}/v1.1/order_create", data=form) as resp:
        return resp.status, await resp.json(content_type=None)


async def alternating(bases: list[str], clients: int, calls: int,
                       first: int = 1) -> list[tuple[int, Any]]:
    """`clients` bots, each sending `calls` orders, each order to the next daemon in turn."""
    async def bot(number: int) -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as session:
            ids = range(first + number * calls, first + (number + 1) * calls)
            return [await order(session, bases[(number + i) % len(bases)], client_id)
                    for i, client_id in enumerate(ids)]
    batches = await asyncio.gather(*(bot(n) for n in range(clients)))
    return [answer for answers in batches for answer in answers]
