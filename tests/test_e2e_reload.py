"""SIGHUP reload while calls run: new accounts and clients apply at once, nothing is dropped."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, cli, curl_json

pytestmark = pytest.mark.slow


def _wait_for_log(stack: Stack, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in stack.logs():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{stack.logs()}"
        time.sleep(0.05)


async def _steady_calls(base: str, seconds: float) -> list[tuple[int, Any]]:
    answers: list[tuple[int, Any]] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.post(f"{base}/v1.1/user_info") as resp:
                answers.append((resp.status, await resp.json(content_type=None)))
    return answers


def test_sighup_adds_an_account_without_dropping_calls(make_stack) -> None:  # type: ignore[no-untyped-def]
    """An account added to the file works after SIGHUP; calls running meanwhile all succeed."""
    stack: Stack = make_stack(delay_ms=5)
    result = cli("account", "add", "second", "--config", str(stack.config), "--from-stdin",
                 "--passphrase-file", str(stack.passphrase_file), stdin=f"{stack.key}\n{stack.secret}\n")
    assert result.returncode == 0, result.stderr
    assert curl_json(f"{stack.base}/accounts/second/v1.1/user_info", "-X", "POST")[0] == 404

    async def scenario() -> list[tuple[int, Any]]:
        calls = asyncio.ensure_future(_steady_calls(stack.base, 2.5))
        await asyncio.sleep(0.5)
        stack.daemon.proc.send_signal(signal.SIGHUP)
        return await calls

    answers = asyncio.run(scenario())
    assert len(answers) > 20 and all(status == 200 for status, _ in answers), answers[:3]
    _wait_for_log(stack, "config reloaded")
    assert curl_json(f"{stack.base}/accounts/second/v1.1/user_info", "-X", "POST")[0] == 200
    assert stack.sim_stats()["errors"].get("40009", 0) == 0


def test_a_bad_config_on_sighup_keeps_the_running_one(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A typo in the file at reload is logged and ignored: the daemon keeps serving as before."""
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text().replace("upstream_timeout_s:", "upstream_timeout:"))
    stack.daemon.proc.send_signal(signal.SIGHUP)
    _wait_for_log(stack, "reload refused")
    assert "limits.upstream_timeout" in stack.logs()
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert stack.daemon.proc.poll() is None


def test_sighup_applies_client_changes(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Adding a client turns tokens on at SIGHUP; removing it revokes its token at the next one."""
    stack: Stack = make_stack()
    token = cli("client", "add", "bot", "--account", "main", "--config", str(stack.config)).stdout.split()[-1]
    auth = ["-H", f"Authorization: Bearer {token}"]
    stack.daemon.proc.send_signal(signal.SIGHUP)
    _wait_for_log(stack, "clients bot")
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 401
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", *auth)[0] == 200
    cli("client", "add", "other", "--account", "main", "--config", str(stack.config))
    assert cli("client", "remove", "bot", "--config", str(stack.config)).returncode == 0
    stack.daemon.proc.send_signal(signal.SIGHUP)
    _wait_for_log(stack, "clients other")
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", *auth)[0] == 401
