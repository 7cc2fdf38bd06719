"""Interactive use on a real terminal (a pty): prompts, no echo of secrets (SPEC §2 `init`)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import clean_env, cli, fake_key, fake_secret

PASS = "interactive passphrase 1"


def _controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _expect(fd: int, needle: str, seen: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while needle not in "".join(seen):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} in {''.join(seen)!r}")
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen.append(os.read(fd, 4096).decode(errors="replace"))
            except OSError:
                break


def _dialogue(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "proxy", *args], stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=_controlling_tty, env=clean_env())
    os.close(slave)
    seen: list[str] = []
    try:
        for prompt, answer in answers:
            _expect(master, prompt, seen)
            os.write(master, answer.encode() + b"\n")
        code = proc.wait(timeout=60)
        _drain(master, seen)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, "".join(seen)


def _drain(fd: int, seen: list[str]) -> None:
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        seen.append(chunk.decode(errors="replace"))


def test_interactive_init_prompts_without_echo(tmp_path: Path) -> None:
    """init on a terminal asks passphrase twice, key, secret; the secret is never echoed."""
    key, secret = fake_key(), fake_secret()
    config = tmp_path / "c.yaml"
    code, screen = _dialogue(["init", "--config", str(config)], [
        ("New passphrase", PASS), ("Repeat passphrase", PASS), ("API key", key), ("API secret", secret),
    ])
    assert code == 0, screen
    assert secret not in screen and PASS not in screen and key in screen  # the key is echoed, nothing else
    pfile = tmp_path / "p"
    pfile.write_text(PASS)
    result = cli("check", "--config", str(config), "--passphrase-file", str(pfile))
    assert result.returncode == 0, result.stderr


def test_interactive_mismatched_passphrases_write_nothing(tmp_path: Path) -> None:
    """Two different passphrases at the prompt: exit 2 and no file."""
    config = tmp_path / "c.yaml"
    code, screen = _dialogue(["init", "--config", str(config)], [
        ("New passphrase", PASS), ("Repeat passphrase", PASS + "x"),
    ])
    assert code == 2 and "differ" in screen and "Traceback" not in screen
    assert not config.exists()
