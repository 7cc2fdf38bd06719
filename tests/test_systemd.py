"""The systemd unit and the notify protocol: Type=notify, watchdog, stop; hardened (SPEC §8)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Stack, clean_env, free_port

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "exmo-proxy.service"
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="needs systemd-analyze (apt-get install systemd)")


def _unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's exmo-proxy (verify checks it exists)."""
    binary = Path(sys.executable).with_name("exmo-proxy")
    unit = tmp_path / "exmo-proxy.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/exmo-proxy", str(binary)))
    return unit


@needs_systemd
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit with no warning at all."""
    result = subprocess.run(["systemd-analyze", "verify", str(_unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr


@needs_systemd
def test_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit at most 2.0 (threshold 20 = 2.0)."""
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                             str(_unit_for_this_machine(tmp_path))],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert level and float(level.group(1)) <= 2.0


def test_unit_is_type_notify_with_watchdog_and_credentials() -> None:
    """The unit relies on what the daemon implements: notify, watchdog, reload, credential, state dir."""
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes",
                 "LoadCredentialEncrypted=exmo-proxy-passphrase:", "StateDirectory=exmo-proxy",
                 "ProtectSystem=strict"):
        assert line in text


def _datagrams(sock: socket.socket, until: float) -> list[str]:
    got: list[str] = []
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def test_ready_only_when_listening_then_watchdog_then_stopping(make_stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """READY=1 arrives once the port accepts, WATCHDOG=1 keeps coming, STOPPING=1 on SIGTERM."""
    stack: Stack = make_stack()
    stack.daemon.stop()
    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    port = free_port()
    env = clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
    with (tmp_path / "d.log").open("w") as log, subprocess.Popen(
        [sys.executable, "-m", "proxy", "run", "--config", str(stack.config), "--passphrase-file",
         str(stack.passphrase_file), "--listen", f"127.0.0.1:{port}", "--upstream", stack.sim.url],
        stdout=log, stderr=log, env=env) as proc:
        listener.settimeout(20)
        first = listener.recv(4096).decode()
        assert first.startswith("READY=1"), first
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # it really listens now
        pings = _datagrams(listener, time.monotonic() + 1.0)
        assert sum(p == "WATCHDOG=1" for p in pings) >= 3, pings
        proc.send_signal(signal.SIGTERM)
        rest = _datagrams(listener, time.monotonic() + 5)
        assert any(p.startswith("STOPPING=1") for p in rest), rest
        assert proc.wait(timeout=30) == 0
    listener.close()
    os.unlink(path)
