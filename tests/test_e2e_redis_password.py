"""A Redis that asks for a password (issue 13): sealed in the config, or in a file; never plaintext.

A real redis-server with `requirepass`, the real CLI and daemons. The password is checked to be absent
from the config file, the daemons' logs, their argv and environment, and every CLI output.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Stack, cli, curl_json
from tests.redis_stack import REDIS_MARKS, alternating, daemons, start_redis

pytestmark = REDIS_MARKS


def _password() -> str:
    return "redis-pw-" + secrets.token_hex(12)


def _process_text(pid: int) -> str:
    return "".join(Path(f"/proc/{pid}/{part}").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                   for part in ("cmdline", "environ"))


def test_a_sealed_redis_password(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    """`exmo-proxy redis password` seals it into the config; two daemons use it and sign; `check` and
    `halt` decrypt it with the passphrase; the plaintext shows up nowhere."""
    password = _password()
    redis = start_redis(tmp_path / "redis", password=password)
    stack = make_stack(delay_ms=2)
    try:
        stack.config.write_text(stack.config.read_text() + f"redis:\n  url: {redis.url}\n")
        common = ["--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file)]
        stored = cli("redis", "password", "--from-stdin", *common, stdin=password + "\n")
        assert stored.returncode == 0, stored.stderr
        text = stack.config.read_text()
        assert password not in text and 'password: "enc:v1:' in text
        checked = cli("check", *common)
        assert checked.returncode == 0 and "answers" in checked.stdout, checked.stderr
        first, second = daemons(stack, redis, 2, configured=True)
        answers = asyncio.run(alternating([first.url, second.url], clients=3, calls=4))
        assert all(a[0] == 200 and a[1].get("result") is True for a in answers), answers[:2]
        outputs = [stored.stdout, stored.stderr, checked.stdout, checked.stderr]
        halted = cli("halt", "on", "--reason", "drill", *common)
        assert halted.returncode == 0 and "HALTED" in halted.stdout, halted.stderr
        outputs += [halted.stdout, halted.stderr]
        assert cli("halt", "off", *common).returncode == 0
        # No passphrase at hand (an emergency at a shell): this host's switch is still set, and the
        # message says the others were not told.
        local = stack.tmp / "state-0"
        blind = cli("halt", "on", "--config", str(stack.config), "--state-dir", str(local))
        assert blind.returncode == 2 and "this host's switch is on" in blind.stderr, blind.stderr
        assert (local / "halt.json").exists()
        assert cli("halt", "off", *common, "--state-dir", str(local)).returncode == 0
        outputs += [blind.stdout, blind.stderr]
        for service in (first, second):
            outputs += [service.log(), _process_text(service.proc.pid)]
        assert not [o for o in outputs if password in o]
    finally:
        for service in stack.extra.get("daemons", []):
            service.kill9()
        redis.stop()


def test_a_wrong_or_plaintext_password_is_refused_clearly(make_stack: Callable[..., Stack],
                                                          tmp_path: Path) -> None:
    """Plaintext in the file: exit 2 naming redis.password. A wrong password in password_file: the
    daemon starts, /readyz is 503 naming Redis, signed calls are 503 unsent; the password file's
    content is in no message."""
    password = _password()
    redis = start_redis(tmp_path / "redis", password=password)
    stack = make_stack()
    base = stack.config.read_text()
    common = ["--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file)]
    try:
        stack.config.write_text(base + f"redis:\n  url: {redis.url}\n  password: {password}\n")
        plain = cli("check", *common)
        assert plain.returncode == 2 and "redis.password" in plain.stderr and "sealed" in plain.stderr
        assert password not in plain.stderr + plain.stdout
        wrong = tmp_path / "wrong-password"
        wrong.write_text("not-" + password + "\n")
        wrong.chmod(0o600)
        stack.config.write_text(base + f"redis:\n  url: {redis.url}\n  password_file: {wrong}\n")
        refused = cli("check", *common)
        assert refused.returncode == 2 and "redis:" in refused.stderr
        (daemon,) = daemons(stack, redis, 1, configured=True)
        status, ready = curl_json(f"{daemon.url}/readyz")
        assert status == 503 and str(redis.port) in ready["reason"], ready
        status, body = curl_json(f"{daemon.url}/v1.1/user_info", "-X", "POST")
        assert (status, body.get("proxy_error")) == (503, "coordination_unavailable"), body
        assert not [t for t in (refused.stderr, daemon.log(), ready["reason"], body["error"])
                    if password in t]
    finally:
        for service in stack.extra.get("daemons", []):
            service.kill9()
        redis.stop()
