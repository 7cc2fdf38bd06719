"""What a relayed WebSocket stream costs: latency per frame, frames per second, memory per open stream.

    python bench/bench_streams.py               # about a minute
    python bench/bench_streams.py --smoke       # a few seconds (the test suite runs this)

Processes on 127.0.0.1: `exmo-proxy simulator` (EXMO's WebSocket API) and `exmo-proxy run` with an
encrypted config whose `ws_upstream` is the simulator. The client is the `websockets` package, the same
in both legs, so the difference between `direct` (client to simulator) and `daemon` (client to daemon to
simulator) is what the relay adds:

- round trip: an `unsubscribe` answered by one `unsubscribed` frame, one at a time; a round trip through
  the daemon crosses it twice (one frame each way), so the added latency per relayed frame is half the
  difference of the medians;
- a flood: the simulator sends N update frames of 200 bytes to one subscribed client as fast as it can;
  frames/s at the client, and the daemon's CPU per frame;
- memory, first, on the fresh daemon: its RSS with no stream, with S idle public streams open (S client
  sockets and S sockets to EXMO), then with S private ones more (each logged in upstream); per stream =
  each growth / S.

Targets (issue 12): ≤ 0.2 ms added per frame at p50; ≤ 40 KiB per idle socket pair with 200 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_stack import PASSPHRASE, cpu_seconds, fake_pair, free_port, memory_mib
from soak import start
from websockets.asyncio.client import ClientConnection, connect

TOPIC = "spot/ticker:BTC_USDT"


async def round_trips(url: str, count: int, login: bool) -> list[float]:
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()  # the greeting
        if login:
            await ws.send(json.dumps({"id": 1, "method": "login", "api_key": "-", "sign": "-", "nonce": 1}))
            await ws.recv()
        times = []
        frame = json.dumps({"id": 7, "method": "unsubscribe", "topics": [TOPIC]})
        for _ in range(count):
            started = time.perf_counter()
            await ws.send(frame)
            await ws.recv()
            times.append(time.perf_counter() - started)
        return times


async def flood(url: str, sim: str, frames: int, pid: int | None) -> tuple[float, float]:
    """Frames/s at the client, and the daemon's CPU µs per frame (NaN without a daemon)."""
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()
        await ws.send(json.dumps({"id": 1, "method": "subscribe", "topics": [TOPIC]}))
        await ws.recv()
        await ws.recv()
        cpu_before = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        request = urllib.request.Request(  # noqa: S310 - the simulator, on loopback
            f"{sim}/_sim/ws/flood?topic={TOPIC}&frames={frames}&bytes=200", method="POST")
        await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).close())  # noqa: S310
        got = 0
        while got < frames:
            frame = await ws.recv()
            if '"pad"' in frame:
                got += 1
        elapsed = time.perf_counter() - started
        cpu = (cpu_seconds(pid) - cpu_before) * 1e6 / frames if pid else float("nan")
        return frames / elapsed, cpu


async def open_idle(url: str, count: int, login: bool, opened: list[ClientConnection]) -> None:
    for _ in range(count):
        ws = await connect(url)
        await ws.recv()
        if login:
            await ws.send(json.dumps({"id": 1, "method": "login", "api_key": "-", "sign": "-", "nonce": 1}))
            await ws.recv()
        opened.append(ws)
    await asyncio.sleep(1.0)


async def memory_per_stream(base: str, count: int, pid: int) -> tuple[float, float]:
    """KiB of daemon RSS per idle stream: `count` public ones, then `count` private ones beside them
    (each measured as growth, so neither reuses memory the other freed)."""
    opened: list[ClientConnection] = []
    try:
        before = memory_mib(pid)
        await open_idle(base + "/v1/public", count, False, opened)
        public = memory_mib(pid)
        await open_idle(base + "/v1/private", count, True, opened)
        private = memory_mib(pid)
        return (public - before) * 1024 / count, (private - public) * 1024 / count
    finally:
        await asyncio.gather(*(ws.close() for ws in opened))


def _cli(tmp: Path, *args: str, stdin: str = "") -> None:
    subprocess.run([sys.executable, "-m", "proxy", *args, "--config", str(tmp / "exmo-proxy.yaml"),  # noqa: S603
                    "--passphrase-file", str(tmp / "passphrase")], input=stdin.encode(), check=True,
                   capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a check that everything runs, not figures")
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args(argv)
    if args.smoke:
        args.trips, args.frames, args.streams = 50, 200, 10
    os.umask(0o077)  # the daemon refuses a passphrase file or config others can read
    with tempfile.TemporaryDirectory(prefix="exmo-bench-ws-") as name:
        tmp = Path(name)
        (tmp / "passphrase").write_text(PASSPHRASE + "\n")
        key, secret = fake_pair()
        (tmp / "sim-accounts.yaml").write_text(f"{key}: {secret}\n")
        sim_port, port = free_port(), free_port()
        sim = start(["simulator", "--listen", f"127.0.0.1:{sim_port}", "--accounts",
                     str(tmp / "sim-accounts.yaml"), "--rate-limit", "0"], sim_port, tmp / "simulator.log")
        daemon = None
        try:
            _cli(tmp, "init", "--account", "main", "--from-stdin", stdin=f"{key}\n{secret}\n")
            with (tmp / "exmo-proxy.yaml").open("a") as config:
                config.write(f"ws_upstream: ws://127.0.0.1:{sim_port}\n"
                             "streams: {max_open: 1000, max_per_client: 1000}\n")
            daemon = start(["run", "--config", str(tmp / "exmo-proxy.yaml"), "--passphrase-file",
                            str(tmp / "passphrase"), "--listen", f"127.0.0.1:{port}", "--upstream",
                            f"http://127.0.0.1:{sim_port}"], port, tmp / "daemon.log")
            return asyncio.run(_measure(args, f"127.0.0.1:{sim_port}", f"127.0.0.1:{port}", daemon.pid))
        finally:
            for proc in (daemon, sim):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


async def _measure(args: argparse.Namespace, sim: str, ours: str, pid: int) -> int:
    public_kib, private_kib = await memory_per_stream(f"ws://{ours}", args.streams, pid)  # a fresh daemon
    legs = {"direct": (f"ws://{sim}", None), "daemon": (f"ws://{ours}", pid)}
    print("# exmo-proxy WebSocket relay benchmark\n")
    print(f"`python bench/bench_streams.py {' '.join(sys.argv[1:])}`\n")
    print("| leg | stream | round trip p50 ms | p99 ms | flood frames/s | daemon CPU µs/frame |")
    print("|---|---|---:|---:|---:|---:|")
    medians: dict[str, float] = {}
    for leg, (base, leg_pid) in legs.items():
        for path, login in (("/v1/public", False), ("/v1/private", True)):
            if leg == "direct" and login:
                continue  # the simulator wants a real login; the relay's own login is not a frame cost
            times = sorted(await round_trips(base + path, args.trips, login and leg == "daemon"))
            rate, cpu = await flood(base + "/v1/public", f"http://{sim}", args.frames, leg_pid)
            medians[f"{leg}{path}"] = statistics.median(times)
            p99 = times[int(len(times) * 0.99)]
            print(f"| {leg} | {path} | {statistics.median(times) * 1000:.3f} | {p99 * 1000:.3f}"
                  f" | {rate:,.0f} | {'-' if cpu != cpu else f'{cpu:.1f}'} |")
    added = (medians["daemon/v1/public"] - medians["direct/v1/public"]) / 2 * 1000
    print(f"\n- added latency per relayed frame (half the round-trip difference, p50): {added:.3f} ms"
          f" (target ≤ 0.2 ms: {'met' if added <= 0.2 else 'MISSED'})")
    print(f"- daemon memory per open idle stream (client socket + socket to EXMO), {args.streams} streams:"
          f" {public_kib:.1f} KiB public, {private_kib:.1f} KiB private (target ≤ 40 KiB:"
          f" {'met' if max(public_kib, private_kib) <= 40 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
