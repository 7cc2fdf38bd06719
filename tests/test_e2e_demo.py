"""`exmo-proxy demo` and the daemon's lifecycle, as a first-time user meets them."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Stack, clean_env, curl_json, free_port

pytestmark = pytest.mark.slow


def _read_demo_banner(proc: subprocess.Popen[str], timeout: float = 30) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Press Ctrl-C" in line:
            return lines
    raise AssertionError("demo printed no banner: " + "\n".join(lines))


def _stream_script(banner: list[str]) -> str:
    """The shell lines from `python3 - <<'PY'` to `PY`, exactly as printed (a user pastes them)."""
    start = banner.index("python3 - <<'PY'")
    end = banner.index("PY", start)
    return "\n".join(banner[start:end + 1]) + "\n"


def _run_stream_example(script: str, order: str) -> None:
    """The demo's WebSocket example, pasted into a shell whose python3 is the venv's (as after the
    README's `. .venv/bin/activate`), sees its login answered, its snapshots, and an order placed over
    REST."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    with subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True,
                          env=clean_env(PATH=path)) as example:
        assert example.stdout is not None
        seen: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while not any('"topic":"spot/orders"' in s and '"update"' in s for s in seen):
                assert time.monotonic() < deadline, seen
                seen.append(example.stdout.readline())
                if any('"logged_in"' in s for s in seen) and sum('"snapshot"' in s for s in seen) == 3 \
                        and order:
                    subprocess.run(shlex.split(order), capture_output=True, check=True, timeout=30)
                    order = ""
        finally:
            example.kill()
    assert '"id":1' in next(s for s in seen if '"logged_in"' in s)


def test_demo_prints_curl_lines_that_work(tmp_path: Path) -> None:
    """Every curl line the demo prints runs as printed and gets the documented answer."""
    port, sim_port = free_port(), free_port()
    with (tmp_path / "demo.log").open("w") as log, subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", "--listen", f"127.0.0.1:{port}",
         "--simulator-listen", f"127.0.0.1:{sim_port}"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env(),
    ) as proc:
        _run_banner(proc)
    assert proc.returncode == 0
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


def test_demo_paper_trades_on_the_simulators_prices(tmp_path: Path) -> None:
    """`demo --paper`: the same curl lines work, answered from the paper ledger; the simulator (the
    live market here) executes no private call; the printed price move runs as printed."""
    port, sim_port = free_port(), free_port()
    with (tmp_path / "demo.log").open("w") as log, subprocess.Popen(
        [sys.executable, "-m", "proxy", "demo", "--paper", "--listen", f"127.0.0.1:{port}",
         "--simulator-listen", f"127.0.0.1:{sim_port}"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env(),
    ) as proc:
        _run_banner(proc, stream=False, after=lambda: _no_private_calls(sim_port))
    assert proc.returncode == 0
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


def _no_private_calls(sim_port: int) -> None:
    stats = curl_json(f"http://127.0.0.1:{sim_port}/_sim/stats")[1]
    assert stats["executed"] == {}, stats


def _run_banner(proc: subprocess.Popen[str], stream: bool = True,
                after: Callable[[], None] = lambda: None) -> None:
    try:
        banner = _read_demo_banner(proc)
        commands = [line.strip() for line in banner if line.strip().startswith("curl ")]
        assert len(commands) >= 6
        order = next(c for c in commands if "order_create" in c and "json" not in c)
        if stream:
            _run_stream_example(_stream_script(banner), order)
        order_id = None
        for command in commands:
            command = command.split("   #")[0]
            if "<order_id" in command:
                assert order_id is not None
                command = re.sub(r"<order_id[^>]*>", str(order_id), command)
            out = subprocess.run([*shlex.split(command), "-w", "\n%{http_code}"], capture_output=True,
                                 text=True, timeout=30, check=True).stdout
            body, _, status = out.rpartition("\n")
            answer = json.loads(body)
            if "withdraw_crypt" in command:
                assert status == "403" and answer["proxy_error"] == "withdrawals_locked"
                continue
            assert status == "200", (command, body)
            assert not (isinstance(answer, dict) and answer.get("result") is False), (command, body)
            if "order_create" in command and order_id is None:
                order_id = answer["order_id"]
        after()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_sigterm_drains_and_exits_0(make_stack) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM while a slow call is in flight: the call is answered, then the daemon exits 0."""
    stack: Stack = make_stack(delay_ms=800)
    with subprocess.Popen(["curl", "-s", "-X", "POST", f"{stack.base}/v1.1/user_info"],
                          stdout=subprocess.PIPE) as client:
        time.sleep(0.3)
        stack.daemon.proc.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=30)
    assert "balances" in json.loads(out)
    assert stack.daemon.proc.wait(timeout=30) == 0


@pytest.mark.parametrize("mode", [None, 0o600], ids=["default-0660", "socket_mode-0600"])
def test_unix_socket_listener(make_stack, tmp_path: Path, mode: int | None) -> None:  # type: ignore[no-untyped-def]
    """`run --listen unix:PATH` serves curl --unix-socket with its mode (0660 unless configured)."""
    stack: Stack = make_stack()
    if mode is not None:
        stack.config.write_text(stack.config.read_text() + f'socket_mode: "{mode:04o}"\n')
    sock = tmp_path / "run" / "proxy.sock"
    with (tmp_path / "unix.log").open("w") as log, subprocess.Popen(
        [sys.executable, "-m", "proxy", "run", "--config", str(stack.config), "--passphrase-file",
         str(stack.passphrase_file), "--listen", f"unix:{sock}", "--upstream", stack.sim.url,
         "--state-dir", str(tmp_path / "state2")], stdout=log, stderr=log, env=clean_env()) as proc:
        _exercise_socket(proc, sock, mode or 0o660)
    assert not sock.exists()


def _exercise_socket(proc: subprocess.Popen[bytes], sock: Path, mode: int) -> None:
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert oct(sock.stat().st_mode & 0o777) == oct(mode)
        status, body = curl_json("http://localhost/v1.1/user_info", "--unix-socket", str(sock), "-X", "POST")
        assert status == 200 and "balances" in body
        health = subprocess.run([sys.executable, "-m", "proxy", "health", "--url", f"unix:{sock}"],
                                capture_output=True, env=clean_env(), check=False)
        assert health.returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_max_wait_zero_still_serves_an_idle_account(make_stack) -> None:  # type: ignore[no-untyped-def]
    """limits.max_wait_s: 0 means 'never queue', not 'always refuse'."""
    stack: Stack = make_stack()
    text = stack.config.read_text().replace("upstream_timeout_s: 15",
                                            "upstream_timeout_s: 15\n  max_wait_s: 0")
    stack.config.write_text(text)
    stack.restart_daemon()
    for _ in range(3):
        assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
