"""What the daemon costs a bot: direct vs through a bare signing proxy vs through exmo-proxy.

    python bench/run.py                # the full benchmark: 3 rounds, 3 s per figure (about 5 minutes)
    python bench/run.py --smoke        # about 30 s: every figure once, for 1 s (the test suite runs this)

Needs wrk (`apt-get install wrk`) and, for the event-loop toggle, uvloop (`pip install uvloop`).
Everything runs on 127.0.0.1 in one go:

- upstream: `bench/fastexmo.py`, which answers like EXMO at once and checks every signature and
  nonce of the keys it knows (the full simulator would be the bottleneck);
- legs: `direct` (wrk straight to the upstream; it cannot sign, so its signed calls go unchecked),
  `bare` (`bench/bareproxy.py`, the smallest aiohttp signing proxy: the yardstick) and `daemon`
  (`exmo-proxy run` as shipped: encrypted config, audit log, access log, metrics, nonce durability,
  policy; only `limits.rate_per_second` is raised, or the bench would measure EXMO's 10/s);
- a signed `order_create` (POST form) and a public `ticker` (GET), at concurrency 1 and 50;
- figures: calls/s, p50 and p99 latency (wrk's), the proxy's CPU time per call (/proc/PID/stat), the
  added p50 per hop (minus direct, same round), RSS idle and after load, cold start to READY=1
  (sd_notify, including the Argon2id unlock), and the cost of each feature toggled off or on.

Each figure is taken in every round with the legs interleaved; the tables print the median over the
rounds and ratios within a round. Errors are counted three ways: wrk's socket errors, non-2xx
answers, and answers the upstream rejected (bad signature, 40009): the daemon must have none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSPHRASE = "bench passphrase, not a secret"
RATE = 10_000  # the most the config allows: the bench measures the daemon, not the limiter (EXMO: 10/s)
ORDER = "pair=BTC_USD&quantity=0.001&price=50000&type=buy"
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nBENCH {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,'
    .. '"p50_us":%d,"p99_us":%d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""
# Feature toggles: (name, the config lines appended to the default config).
TOGGLES: list[tuple[str, str]] = [
    ("audit fsync per entry", "audit: {fsync: true}"),
    ("access log off", "access_log: false"),
    ("metrics off", "metrics: false"),
    ("asyncio event loop", "event_loop: asyncio"),
    ("uvloop event loop", "event_loop: uvloop"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a bench process exited at start:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"port {port} did not open; see {log}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mib(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Setup:
    tmp: Path
    key: str
    secret: str
    passphrase: Path
    upstream: Process | None = None
    started: list[Process] = field(default_factory=list)

    def spawn(self, args: list[str], name: str, env: dict[str, str] | None = None) -> Process:
        port = free_port()
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, *args, "--listen", f"127.0.0.1:{port}"],  # noqa: S603
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        process = Process(proc, port, log)
        self.started.append(process)
        wait_port(port, proc, log)
        return process

    def config(self, name: str, extra: str) -> Path:
        text = (self.tmp / "exmo-proxy.yaml").read_text() + f"\n{extra}\n"
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        path.chmod(0o600)
        return path

    def daemon(self, name: str, config: Path, env: dict[str, str] | None = None) -> Process:
        assert self.upstream is not None
        state = self.tmp / f"state-{name}"
        return self.spawn(["-m", "proxy", "run", "--config", str(config), "--passphrase-file",
                           str(self.passphrase), "--upstream", f"http://127.0.0.1:{self.upstream.port}",
                           "--state-dir", str(state)], name, env)


@contextmanager
def setup() -> Iterator[Setup]:
    with tempfile.TemporaryDirectory(prefix="exmo-bench-") as name:
        tmp = Path(name)
        old_umask = os.umask(0o077)
        key, secret = "K-" + secrets.token_hex(20), "S-" + secrets.token_hex(20)
        passphrase = tmp / "passphrase"
        passphrase.write_text(PASSPHRASE + "\n")
        subprocess.run([sys.executable, "-m", "proxy", "init", "--config", str(tmp / "exmo-proxy.yaml"),  # noqa: S603
                        "--from-stdin", "--passphrase-file", str(passphrase)],
                       input=f"{key}\n{secret}\n".encode(), check=True, capture_output=True)
        text = (tmp / "exmo-proxy.yaml").read_text()
        (tmp / "exmo-proxy.yaml").write_text(text.replace("rate_per_second: 10 ", f"rate_per_second: {RATE} "))
        bare_key, bare_secret = "K-" + secrets.token_hex(20), "S-" + secrets.token_hex(20)
        (tmp / "bare-key.yaml").write_text(f"{bare_key}: {bare_secret}\n")  # its own key: no shared nonces
        (tmp / "keys.yaml").write_text(f"{key}: {secret}\n{bare_key}: {bare_secret}\n")
        bench = Setup(tmp, key, secret, passphrase)
        try:
            bench.upstream = bench.spawn([str(HERE / "fastexmo.py"), "--accounts", str(tmp / "keys.yaml")],
                                         "upstream")
            yield bench
        finally:
            for process in reversed(bench.started):
                process.stop()
            os.umask(old_umask)


def cold_start(bench: Setup, config: Path, name: str) -> tuple[float, Process]:
    """Seconds from exec to READY=1 (the listener is bound, the secrets are decrypted)."""
    path = bench.tmp / f"notify-{name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        started = time.monotonic()
        process = bench.daemon(name, config, env)
        while b"READY=1" not in sock.recv(4096):
            pass
        ready = time.monotonic() - started
    path.unlink()
    return ready, process


@dataclass(frozen=True)
class Leg:
    name: str
    port: int
    pid: int | None


def upstream_stats(bench: Setup) -> dict[str, int]:
    assert bench.upstream is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{bench.upstream.port}/_stats", timeout=5) as resp:
        stats: dict[str, int] = json.load(resp)
    return stats


def wrk(bench: Setup, leg: Leg, endpoint: str, connections: int, seconds: float) -> dict[str, float]:
    script = bench.tmp / f"{endpoint}.lua"
    if not script.exists():
        head = (f'wrk.method = "POST"\nwrk.body = "{ORDER}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                'wrk.headers["Key"] = "K-direct-unchecked"\n') if endpoint == "order_create" else ""
        script.write_text(head + WRK_DONE)
    before = upstream_stats(bench)
    cpu_before = cpu_seconds(leg.pid) if leg.pid else 0.0
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",  # noqa: S607
                          "-s", str(script), f"http://127.0.0.1:{leg.port}/v1.1/{endpoint}"],
                         capture_output=True, text=True, check=True).stdout
    cpu = (cpu_seconds(leg.pid) - cpu_before) if leg.pid else 0.0
    after = upstream_stats(bench)
    found = json.loads(out.split("BENCH ", 1)[1])
    calls = max(1, int(found["requests"]))
    rejected = sum(v - before.get(k, 0) for k, v in after.items() if k.startswith("rejected"))
    if rejected and os.environ.get("BENCH_DEBUG"):
        print(leg.name, {k: v - before.get(k, 0) for k, v in after.items()}, file=sys.stderr)
    return {
        "rps": calls / (found["duration_us"] / 1e6), "p50_ms": found["p50_us"] / 1000,
        "p99_ms": found["p99_us"] / 1000, "cpu_us": cpu * 1e6 / calls if leg.pid else float("nan"),
        "errors": found["errors"] + found["non2xx"] + rejected, "calls": calls,
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN prints as -


Table = dict[tuple[str, str, int], list[dict[str, float]]]


def measure(bench: Setup, legs: list[Leg], rounds: int, seconds: float, log: Callable[[str], None]) -> Table:
    table: Table = {}
    for number in range(1, rounds + 1):
        log(f"round {number}/{rounds}")
        for endpoint in ("order_create", "ticker"):
            for connections in (1, 50):
                for leg in legs:
                    figure = wrk(bench, leg, endpoint, connections, seconds)
                    table.setdefault((leg.name, endpoint, connections), []).append(figure)
    return table


def print_main(table: Table, legs: list[Leg], rounds: int) -> None:
    print(f"\n## Direct vs through a proxy (median of {rounds} rounds)\n")
    print("| call | conc | leg | calls/s | p50 ms | p99 ms | added p50 ms | CPU µs/call | vs bare calls/s |"
          " errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for endpoint in ("order_create", "ticker"):
        for connections in (1, 50):
            direct = table[("direct", endpoint, connections)]
            bare = table.get(("bare", endpoint, connections))
            for leg in legs:
                rows = table[(leg.name, endpoint, connections)]
                added = [r["p50_ms"] - d["p50_ms"] for r, d in zip(rows, direct, strict=True)]
                ratio = [r["rps"] / b["rps"] for r, b in zip(rows, bare, strict=True)] if bare else []
                print(f"| {endpoint} | {connections} | {leg.name} | {fmt(median([r['rps'] for r in rows]), 0)} |"
                      f" {fmt(median([r['p50_ms'] for r in rows]), 3)} | {fmt(median([r['p99_ms'] for r in rows]), 3)} |"
                      f" {'-' if leg.name == 'direct' else fmt(median(added), 3)} |"
                      f" {fmt(median([r['cpu_us'] for r in rows]), 0)} |"
                      f" {'-' if leg.name in ('direct', 'bare') else fmt(median(ratio), 2)} |"
                      f" {int(sum(r['errors'] for r in rows))} |")


def toggles(bench: Setup, base: Leg, rounds: int, seconds: float, log: Callable[[str], None]) -> None:
    print(f"\n## Cost of each feature (signed order_create; median of {rounds} rounds; ratio to the"
          " default daemon in the same round)\n")
    print("| variant | config | c=50 calls/s | ratio | c=50 CPU µs/call | c=1 p50 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, change in TOGGLES:
        if "uvloop" in change and not _have_uvloop():
            print(f"| {name} | {change} | not measured: uvloop is not installed | | | | |")
            continue
        variant = bench.daemon(name.replace(" ", "-"), bench.config(name.replace(" ", "-"), change))
        leg = Leg(name, variant.port, variant.pid)
        rows: list[tuple[dict[str, float], dict[str, float], dict[str, float]]] = []
        for number in range(rounds):
            log(f"toggle {name}: round {number + 1}/{rounds}")
            default = wrk(bench, base, "order_create", 50, seconds)
            busy = wrk(bench, leg, "order_create", 50, seconds)
            single = wrk(bench, leg, "order_create", 1, seconds)
            rows.append((default, busy, single))
        variant.stop()
        print(f"| {name} | `{change}` | {fmt(median([b['rps'] for _, b, _ in rows]), 0)} |"
              f" {fmt(median([b['rps'] / d['rps'] for d, b, _ in rows]), 2)} |"
              f" {fmt(median([b['cpu_us'] for _, b, _ in rows]), 0)} |"
              f" {fmt(median([s['p50_ms'] for _, _, s in rows]), 3)} |"
              f" {int(sum(b['errors'] + s['errors'] for _, b, s in rows))} |")


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"{platform.node() or 'host'}: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()},"
            f" Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds: one short round, a check only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure")
    parser.add_argument("--no-toggles", action="store_true", help="skip the feature toggles")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.seconds = 1, 1.0
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    print(f"# exmo-proxy benchmark\n\n{machine()}\n`python bench/run.py {' '.join(argv or sys.argv[1:])}`"
          f" — {args.rounds} round(s), {args.seconds:g} s per figure, wrk -t1\n")
    with setup() as bench:
        assert bench.upstream is not None
        config = bench.tmp / "exmo-proxy.yaml"
        starts = []
        for number in range(max(3, args.rounds) if not args.smoke else 1):
            seconds, process = cold_start(bench, config, f"cold-{number}")
            starts.append(seconds)
            process.stop()
        ready, daemon = cold_start(bench, config, "daemon")
        starts.append(ready)
        time.sleep(1.0)
        idle_rss = rss_mib(daemon.pid)
        bare = bench.spawn([str(HERE / "bareproxy.py"), "--upstream", f"http://127.0.0.1:{bench.upstream.port}",
                            "--accounts", str(bench.tmp / "bare-key.yaml")], "bare")
        legs = [Leg("direct", bench.upstream.port, None), Leg("bare", bare.port, bare.pid),
                Leg("daemon", daemon.port, daemon.pid)]
        table = measure(bench, legs, args.rounds, args.seconds, log)
        loaded_rss, peak = rss_mib(daemon.pid), rss_mib(daemon.pid, "VmHWM")
        print_main(table, legs, args.rounds)
        print("\n## Memory and start-up (daemon)\n")
        print(f"- cold start to READY=1, exec to sd_notify (Argon2id unlock included): median"
              f" {median(starts) * 1000:.0f} ms over {len(starts)} starts (min {min(starts) * 1000:.0f},"
              f" max {max(starts) * 1000:.0f})")
        print(f"- RSS idle after start: {idle_rss:.1f} MiB; after the load above: {loaded_rss:.1f} MiB;"
              f" peak (VmHWM, the Argon2id unlock's 64 MiB): {peak:.1f} MiB")
        if not args.no_toggles:
            toggles(bench, legs[2], args.rounds, args.seconds, log)
        errors = sum(r["errors"] for (name, _, _), rows in table.items() if name == "daemon" for r in rows)
        print(f"\nDaemon errors (socket, non-2xx, upstream rejections): {int(errors)}")
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
