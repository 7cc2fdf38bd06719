"""Soak test: the daemon at EXMO's rate limit for a while, with faults injected upstream.

    python bench/soak.py --minutes 10            # the real soak (not part of CI)
    python bench/soak.py --seconds 8             # a smoke run (the test suite runs this)

Processes, all on 127.0.0.1: `exmo-proxy simulator` (rate limit 10/s) <- a fault injector <-
`exmo-proxy run` <- bots sending order_create, each with a unique client_id. The injector breaks a
share of the requests in the ways EXMO can fail: refused before forwarding, a hang, a 502 HTML
page, a reset after the order executed, an answer delayed past the timeout after it executed.

Prints calls, answers by kind, duplicates (client_ids executed twice; must be 0), lost (answered
as executed but unknown to the exchange; must be 0), and the daemon's RSS at start and end. Exits
1 if a duplicate or a lost call is found, or if any call got no HTTP answer at all.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from bench_stack import free_port, memory_mib

FAULTS = ("refuse", "hang", "html_502", "reset_after", "late_after")


def start(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "proxy", *args], stdout=out,  # noqa: S603 - our CLI
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{args[0]} did not start; see {log}")


class Injector:
    """An upstream in front of the simulator that breaks `fault_rate` of the requests."""

    def __init__(self, target: str, fault_rate: float, timeout_s: float) -> None:
        self.target, self.fault_rate, self.timeout_s = target, fault_rate, timeout_s
        self.injected: collections.Counter[str] = collections.Counter()
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        fault = random.choice(FAULTS) if random.random() < self.fault_rate else None  # noqa: S311
        if fault:
            self.injected[fault] += 1
        if fault == "refuse":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=599)
        if fault == "hang":
            await asyncio.sleep(self.timeout_s + 1)
            return web.Response(status=599)
        if fault == "html_502":
            return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")
        answer = await self._forward(request)
        if fault == "reset_after":
            assert request.transport is not None
            request.transport.close()
        if fault == "late_after":
            await asyncio.sleep(self.timeout_s + 1)
        return answer

    async def _forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k in ("Key", "Sign", "Content-Type")}
        async with self.session.request(request.method, self.target + request.path_qs,
                                        data=await request.read(), headers=headers) as resp:
            return web.Response(status=resp.status, body=await resp.read(),
                                content_type=resp.content_type)


async def bot(base: str, ids: collections.deque[int], stop_at: float, outcomes: dict[int, str]) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < stop_at and ids:
            client_id = ids.popleft()
            form = {"pair": "BTC_USDT", "quantity": "0.0001", "price": "20000", "type": "buy",
                    "client_id": str(client_id)}
            try:
                async with session.post(f"{base}/v1.1/order_create", data=form) as resp:
                    body: Any = await resp.json(content_type=None)
                    outcomes[client_id] = _kind(resp.status, body)
            except aiohttp.ClientError as exc:
                outcomes[client_id] = f"no answer ({type(exc).__name__})"
            except ValueError:
                outcomes[client_id] = "no answer (not JSON)"


def _kind(status: int, body: Any) -> str:
    if status == 200:
        return "executed" if isinstance(body, dict) and body.get("result") is True else "exmo error"
    slug = body.get("proxy_error", "?") if isinstance(body, dict) else "?"
    return f"{status} {slug}"


async def load(base: str, seconds: float, bots: int) -> dict[int, str]:
    outcomes: dict[int, str] = {}
    ids: collections.deque[int] = collections.deque(range(1, 10_000_000))
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(bot(base, ids, stop_at, outcomes) for _ in range(bots)))
    return outcomes


async def sim_stats(sim_url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(f"{sim_url}/_sim/stats") as resp:
        return await resp.json()


def setup(tmp: Path, timeout_s: float) -> tuple[Path, Path, str, str]:
    key, secret = "K-" + secrets.token_hex(20), "S-" + secrets.token_hex(20)
    passphrase = tmp / "passphrase"
    passphrase.write_text("soak test passphrase\n")
    config = tmp / "exmo-proxy.yaml"
    subprocess.run([sys.executable, "-m", "proxy", "init", "--config", str(config),  # noqa: S603
                    "--from-stdin",
                    "--passphrase-file", str(passphrase)], input=f"{key}\n{secret}\n", text=True,
                   check=True, capture_output=True)
    text = config.read_text().replace("upstream_timeout_s: 15", f"upstream_timeout_s: {timeout_s}")
    config.write_text(text)
    (tmp / "sim.yaml").write_text(f"{key}: {secret}\n")
    return config, passphrase, key, secret


async def soak(seconds: float, fault_rate: float, bots: int) -> int:
    os.umask(0o077)
    timeout_s = 1.5
    with tempfile.TemporaryDirectory(prefix="exmo-soak-") as folder:
        tmp = Path(folder)
        config, passphrase, _, _ = setup(tmp, timeout_s)
        sim_port, inj_port, port = free_port(), free_port(), free_port()
        sim = start(["simulator", "--listen", f"127.0.0.1:{sim_port}", "--accounts",
                     str(tmp / "sim.yaml"), "--delay-ms", "20", "--rate-limit", "10"],
                    sim_port, tmp / "sim.log")
        injector = Injector(f"http://127.0.0.1:{sim_port}", fault_rate, timeout_s)
        injector.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", injector.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", inj_port).start()
        daemon = start(["run", "--config", str(config), "--passphrase-file", str(passphrase), "--listen",
                        f"127.0.0.1:{port}", "--upstream", f"http://127.0.0.1:{inj_port}"],
                       port, tmp / "d.log")
        try:
            rss_start = memory_mib(daemon.pid)
            outcomes = await load(f"http://127.0.0.1:{port}", seconds, bots)
            rss_end = memory_mib(daemon.pid)
            stats = await sim_stats(f"http://127.0.0.1:{sim_port}")
            alive = daemon.poll() is None
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            sim.kill()
            await injector.session.close()
            await runner.cleanup()
    return report(outcomes, stats, injector.injected, rss_start, rss_end, alive, seconds)


def report(outcomes: dict[int, str], stats: Any, injected: collections.Counter[str], rss_start: float,
           rss_end: float, alive: bool, seconds: float) -> int:
    executed = {int(k): v for k, v in stats["client_ids"].items()}
    duplicates = sorted(cid for cid, n in executed.items() if n > 1)
    lost = sorted(cid for cid, kind in outcomes.items() if kind == "executed" and executed.get(cid) != 1)
    silent = sorted(cid for cid, kind in outcomes.items() if kind.startswith("no answer"))
    kinds = collections.Counter(outcomes.values())
    print(f"duration: {seconds:.0f} s   calls: {len(outcomes)}   ({len(outcomes) / seconds:.1f}/s)")
    print("answers: " + ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common()))
    print("faults injected: " + (", ".join(f"{f}: {n}" for f, n in injected.most_common()) or "none"))
    print(f"exchange executed: {sum(executed.values())}   exchange 40009: {stats['errors'].get('40009', 0)}"
          f"   exchange 40034: {stats['errors'].get('40034', 0)}")
    print(f"duplicates: {len(duplicates)}   lost: {len(lost)}   without an answer: {len(silent)}")
    print(f"daemon RSS: {rss_start:.1f} MiB at start, {rss_end:.1f} MiB at end;"
          f" alive at the end: {alive}")
    return 1 if duplicates or lost or silent or not alive else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="share of upstream requests broken")
    parser.add_argument("--bots", type=int, default=4)
    args = parser.parse_args()
    seconds = args.seconds or args.minutes * 60 or 120
    return asyncio.run(soak(seconds, args.fault_rate, args.bots))


if __name__ == "__main__":
    raise SystemExit(main())
