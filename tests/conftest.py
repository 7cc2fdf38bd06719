"""Shared test helpers: real processes (simulator, daemon, CLI) on loopback, curl, fake keys."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PASSPHRASE = "correct horse battery staple"

# Passphrase and config files must be private (the daemon refuses group/world-readable ones), so
# files the tests write are created the way a careful user's would be. Tests about permissions
# chmod their files explicitly.
os.umask(0o077)


def fake_key() -> str:
    return "K-" + secrets.token_hex(20)


def fake_secret() -> str:
    return "S-" + secrets.token_hex(20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("EXMO_PROXY", "CREDENTIALS_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m proxy ARGS` as a user would, stdin piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], input=stdin if stdin is not None else "",
        capture_output=True, text=True, timeout=timeout, env=env or clean_env(), check=False,
    )


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} did not open:\n{log.read_text()}")


@dataclass
class Service:
    """A started `exmo-proxy` process (daemon or simulator) with its log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: a wrapper (faketime) and its child
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start(args: list[str], port: int, log_path: Path, env: dict[str, str] | None = None,
          wrap: Sequence[str] = ()) -> Service:
    log = log_path.open("ab")
    proc = subprocess.Popen([*wrap, sys.executable, "-m", "proxy", *args], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env or clean_env(),
                            start_new_session=True)
    log.close()
    service = Service(proc, log_path, port)
    try:
        wait_for_port(port, proc, log_path)
    except AssertionError:
        service.kill9()
        raise
    return service


def curl(url: str, *args: str, timeout: float = 60) -> tuple[int, bytes]:
    """curl as a bot would use it; (HTTP status, body bytes)."""
    out = subprocess.run(
        ["curl", "-s", "-S", "--max-time", str(timeout), "-w", "\n%{http_code}", *args, url],
        capture_output=True, check=True, timeout=timeout + 5,
    ).stdout
    body, _, status = out.rpartition(b"\n")
    return int(status), body


def curl_json(url: str, *args: str) -> tuple[int, Any]:
    status, body = curl(url, *args)
    return status, json.loads(body)


@dataclass
class Stack:
    """Simulator + daemon processes with one account whose secret only they know."""

    tmp: Path
    key: str
    secret: str
    config: Path
    passphrase_file: Path
    sim: Service
    daemon: Service
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.daemon.url

    def sim_stats(self) -> Any:
        return curl_json(f"{self.sim.url}/_sim/stats")[1]

    def restart_daemon(self, *, kill9: bool = False) -> None:
        if kill9:
            self.daemon.kill9()
        else:
            self.daemon.stop()
        self.daemon = start_daemon(self)

    def logs(self) -> str:
        return self.daemon.log()


def write_passphrase(tmp: Path, value: str = PASSPHRASE) -> Path:
    path = tmp / "passphrase"
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def init_config(tmp: Path, key: str, secret: str, passphrase_file: Path, rate: float = 1000,
                name: str = "main") -> Path:
    config = tmp / "exmo-proxy.yaml"
    result = cli("init", "--config", str(config), "--account", name, "--from-stdin",
                 "--passphrase-file", str(passphrase_file), stdin=f"{key}\n{secret}\n")
    assert result.returncode == 0, result.stderr
    text = config.read_text().replace("rate_per_second: 10 ", f"rate_per_second: {rate} ")
    config.write_text(text)
    return config


def start_simulator(tmp: Path, accounts: dict[str, str], delay_ms: int = 0, rate_limit: int = 0,
                    style: str = "40034") -> Service:
    accounts_file = tmp / "sim-accounts.yaml"
    accounts_file.write_text("".join(f"{k}: {v}\n" for k, v in accounts.items()))
    port = free_port()
    return start(["simulator", "--listen", f"127.0.0.1:{port}", "--accounts", str(accounts_file),
                  "--delay-ms", str(delay_ms), "--rate-limit", str(rate_limit), "--rate-limit-style", style],
                 port, tmp / "simulator.log")


NONCE_DISK = '''"""Test-only (tests/conftest.py NonceDisk): the disk under the daemon's nonce state, made slow
or failing. Every fsync of a ceiling write's temporary file (proxy/durable.py) is logged, takes DELAY_S,
and fails with ENOSPC while the file FAIL exists."""
import errno
import os
import time

_fsync = os.fsync


def _nonce_fsync(fd):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if "/nonces/." not in target:
        return _fsync(fd)
    with open(LOG, "a") as log:
        log.write(f"start {time.monotonic()}\\n")
    time.sleep(DELAY_S)
    if os.path.exists(FAIL):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    _fsync(fd)
    with open(LOG, "a") as log:
        log.write(f"end {time.monotonic()}\\n")


os.fsync = _nonce_fsync
'''


@dataclass
class NonceDisk:
    """A `sitecustomize` for the daemon's interpreter (PYTHONPATH) that makes nonce-ceiling writes slow
    or fail: fault injection from outside, no test hook in the daemon. `log` gets a `start`/`end` line
    (monotonic seconds) per write; touching `fail` makes writes fail with ENOSPC until it is removed."""

    tmp: Path
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        self.folder = self.tmp / "nonce-disk"
        self.folder.mkdir(exist_ok=True)
        self.log = self.folder / "writes.log"
        self.fail = self.folder / "fail"
        (self.folder / "sitecustomize.py").write_text(
            f"LOG = {str(self.log)!r}\nFAIL = {str(self.fail)!r}\nDELAY_S = {self.delay_s!r}\n" + NONCE_DISK)

    def env(self) -> dict[str, str]:
        return clean_env(PYTHONPATH=str(self.folder))


def start_daemon(stack: Stack, *extra: str, wrap: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> Service:
    port = stack.daemon.port if getattr(stack, "daemon", None) else free_port()
    if wrap:
        env = {**(env or clean_env()), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return start(["run", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file),
                  "--listen", f"127.0.0.1:{port}", "--upstream", stack.sim.url, *extra],
                 port, stack.tmp / "daemon.log", env=env, wrap=wrap)


def build_stack(tmp: Path, *, delay_ms: int = 0, sim_rate: int = 0, rate: float = 1000,
                sim_style: str = "40034") -> Stack:
    key, secret = fake_key(), fake_secret()
    passphrase_file = write_passphrase(tmp)
    config = init_config(tmp, key, secret, passphrase_file, rate=rate)
    sim = start_simulator(tmp, {key: secret}, delay_ms=delay_ms, rate_limit=sim_rate, style=sim_style)
    with config.open("a") as text:  # the streams' upstream too: the simulator speaks EXMO's WebSocket API
        text.write(f"ws_upstream: {sim.url.replace('http://', 'ws://')}\n")
    stack = Stack(tmp, key, secret, config, passphrase_file, sim, daemon=None)  # type: ignore[arg-type]
    stack.daemon = start_daemon(stack)
    return stack


def _teardown(stack: Stack) -> None:
    for service in (stack.daemon, stack.sim):
        if service is not None:
            service.kill9()  # also reaps a wrapper's child whose wrapper already exited


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Factory: build_stack(...) in this test's tmp dir; processes are killed afterwards."""
    made: list[Stack] = []

    def factory(**kwargs: Any) -> Stack:
        stack = build_stack(tmp_path, **kwargs)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        _teardown(stack)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One simulator + daemon shared by a module's read-mostly tests."""
    built = build_stack(tmp_path_factory.mktemp("stack"))
    yield built
    _teardown(built)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    """A throwaway redis-server on loopback for one test (tests/redis_stack.py)."""
    from tests.redis_stack import start_redis  # imported here: redis_stack imports this module

    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()
