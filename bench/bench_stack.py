"""The processes a benchmark run needs, on 127.0.0.1: the fast upstream, the bare proxy, daemons.

Every process is stopped when the `bench_stack()` context ends, also on an error or Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSPHRASE = "bench-only passphrase"  # noqa: S105 - a throwaway config in a temp dir
RATE = 100_000  # the config's maximum: the bench measures the daemon, not EXMO's 10 calls/s pacing


def fake_pair() -> tuple[str, str]:
    return "K-" + secrets.token_hex(20), "S-" + secrets.token_hex(20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
class BenchStack:
    tmp: Path
    accounts: list[str]  # account names in the daemon's config; the first is the default
    pairs: list[tuple[str, str]] = field(default_factory=list)  # their keys and secrets
    started: list[Process] = field(default_factory=list)
    upstream_port: int = 0

    @property
    def passphrase_file(self) -> Path:
        return self.tmp / "passphrase"

    def spawn(self, args: list[str], name: str, env: dict[str, str] | None = None,
              wait: bool = True) -> Process:
        port = free_port()
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, *args, "--listen", f"127.0.0.1:{port}"],  # noqa: S603
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        process = Process(proc, port, log)
        self.started.append(process)
        if wait:
            _wait_for_port(process)
        return process

    def config(self, name: str, extra: str = "") -> Path:
        """The default config (as `init` and `account add` wrote it), plus `extra` top-level lines (or,
        for `limits.rate_per_second: N`, that rate instead of the bench's), with API keys of its own:
        two daemons on one key would see each other's nonces (40009). A key is plain text in the
        config; each new one is told to the upstream with the same secret."""
        text = (self.tmp / "exmo-proxy.yaml").read_text()
        if extra.startswith("limits.rate_per_second:"):
            rate = extra.split(":")[1].strip()
            text = text.replace(f"rate_per_second: {RATE} ", f"rate_per_second: {rate} ")
            extra = ""
        aliases = []
        for key, secret in self.pairs:
            alias = fake_pair()[0]
            text = text.replace(key, alias)
            aliases.append(f"{alias}: {secret}\n")
        request = urllib.request.Request(f"http://127.0.0.1:{self.upstream_port}/_keys",
                                         data="".join(aliases).encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - http, loopback
        path = self.tmp / f"{name}.yaml"
        path.write_text(text + (f"\n{extra}\n" if extra else ""))
        path.chmod(0o600)
        return path

    def daemon(self, name: str, config: Path, env: dict[str, str] | None = None,
               wait: bool = True) -> Process:
        return self.spawn(["-m", "proxy", "run", "--config", str(config), "--passphrase-file",
                           str(self.passphrase_file), "--upstream", f"http://127.0.0.1:{self.upstream_port}",
                           "--state-dir", str(self.tmp / f"state-{name}")], name, env, wait)

    def cold_start(self, name: str, config: Path) -> tuple[float, Process]:
        """Seconds from exec to READY=1 (bound and listening, secrets decrypted), and the process."""
        path = self.tmp / f"notify-{name}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(30)
            started = time.monotonic()
            process = self.daemon(name, config, {**os.environ, "NOTIFY_SOCKET": str(path)}, wait=False)
            while b"READY=1" not in sock.recv(4096):
                pass
            ready = time.monotonic() - started
        path.unlink()
        return ready, process


def _wait_for_port(process: Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise SystemExit(f"bench: a process exited at start:\n{process.log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", process.port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"bench: port {process.port} did not open; see {process.log}")


def _cli(tmp: Path, *args: str, secret_lines: str) -> None:
    subprocess.run([sys.executable, "-m", "proxy", *args, "--config", str(tmp / "exmo-proxy.yaml"),  # noqa: S603
                    "--from-stdin", "--passphrase-file", str(tmp / "passphrase")],
                   input=secret_lines.encode(), check=True, capture_output=True)


@contextmanager
def bench_stack(keys: int) -> Iterator[BenchStack]:
    """A temp dir with a real encrypted config of `keys` accounts, and the fast upstream running."""
    with tempfile.TemporaryDirectory(prefix="exmo-bench-") as name:
        tmp = Path(name)
        old_umask = os.umask(0o077)
        stack = BenchStack(tmp, [])
        try:
            (tmp / "passphrase").write_text(PASSPHRASE + "\n")
            pairs = [fake_pair() for _ in range(keys + 1)]  # the last one is the bare proxy's own key
            for number, (key, secret) in enumerate(pairs[:keys]):
                account = "main" if number == 0 else f"k{number + 1}"
                if number == 0:
                    _cli(tmp, "init", "--account", account, secret_lines=f"{key}\n{secret}\n")
                else:
                    _cli(tmp, "account", "add", account, secret_lines=f"{key}\n{secret}\n")
                stack.accounts.append(account)
                stack.pairs.append((key, secret))
            text = (tmp / "exmo-proxy.yaml").read_text()
            text = text.replace("rate_per_second: 10 ", f"rate_per_second: {RATE} ")
            (tmp / "exmo-proxy.yaml").write_text(text)
            (tmp / "keys.yaml").write_text("".join(f"{k}: {s}\n" for k, s in pairs))
            (tmp / "bare-key.yaml").write_text(f"{pairs[-1][0]}: {pairs[-1][1]}\n")
            upstream = stack.spawn([str(HERE / "fastexmo.py"), "--accounts", str(tmp / "keys.yaml")],
                                   "upstream")
            stack.upstream_port = upstream.port
            yield stack
        finally:
            for process in reversed(stack.started):
                process.stop()
            os.umask(old_umask)
