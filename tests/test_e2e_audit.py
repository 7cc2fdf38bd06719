"""The audit log end to end: complete lines, also after kill -9, redaction, no secrets, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import PASSPHRASE, NonceDisk, Stack, cli, curl_json, start_daemon

pytestmark = pytest.mark.slow


def audit_file(stack: Stack) -> Path:
    return stack.tmp / "exmo-proxy-state" / "audit.jsonl"


def entries(stack: Stack) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit_file(stack).read_text().splitlines()]


def test_each_call_leaves_one_complete_line(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Answered, refused and failed calls each have one line with the documented fields."""
    stack: Stack = make_stack()
    text = stack.config.read_text() + "audit:\n  redact: [client_id, address]\n"
    stack.config.write_text(text.replace("    key: K-", "    allow_withdrawals: true\n    key: K-", 1))
    stack.restart_daemon()
    rid = uuid.uuid4().hex
    form = ["-d", "pair=BTC_USDT", "-d", "quantity=0.01", "-d", "price=20000", "-d", "type=buy"]
    curl_json(f"{stack.base}/v1.1/order_create", "-X", "POST", "-H", f"X-Request-Id: {rid}", *form,
              "-d", "client_id=7")
    curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")
    curl_json(f"{stack.base}/v1.1/withdraw_crypt", "-X", "POST", "-d", "amount=1", "-d", "currency=BTC",
              "-d", "address=bc1qdest")
    lines = entries(stack)
    assert [e["method"] for e in lines] == ["order_create", "user_info", "withdraw_crypt"]
    order = lines[0]
    assert list(order) == ["time", "request_id", "client", "account", "method", "params", "nonce",
                           "http_status", "exmo_result", "exmo_error_code", "latency_ms", "outcome"]
    assert order["request_id"] == rid and order["account"] == "main" and order["outcome"] == "answered"
    assert order["params"] == {"pair": "BTC_USDT", "quantity": "0.01", "price": "20000", "type": "buy",
                               "client_id": "***"}
    assert order["exmo_result"] is True and isinstance(order["nonce"], int)
    assert lines[2]["params"]["address"] == "bc1qdest"  # money out keeps where it went
    assert lines[1]["nonce"] > order["nonce"]
    shown = cli("audit", "grep", "--method", "order_create", "--config", str(stack.config))
    assert shown.returncode == 0 and "order_create" in shown.stdout and "user_info" not in shown.stdout
    assert len(cli("audit", "tail", "-n", "2", "--config", str(stack.config)).stdout.splitlines()) == 2


def test_refusals_are_audited_and_nothing_secret_is(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A refused withdrawal is on record; secret, Sign, token and passphrase appear nowhere."""
    stack: Stack = make_stack()
    token = cli("client", "add", "bot", "--account", "main", "--config", str(stack.config)).stdout.split()[-1]
    stack.restart_daemon()
    auth = ["-H", f"Authorization: Bearer {token}"]
    status, _ = curl_json(f"{stack.base}/v1.1/withdraw_crypt", "-X", "POST", *auth, "-d", "amount=1")
    assert status == 403
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", *auth)[0] == 200
    refused, answered = entries(stack)
    assert (refused["outcome"], refused["http_status"], refused["client"]) == ("refused", 403, "bot")
    assert refused["nonce"] is None and answered["client"] == "bot"
    everything = audit_file(stack).read_text() + stack.logs()
    for secret in (stack.secret, token, PASSPHRASE):
        assert secret not in everything
    assert not re.search(r"\b[0-9a-f]{128}\b", everything), "a Sign value leaked"


async def _bot(base: str, answered: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            rid = uuid.uuid4().hex
            try:
                async with session.post(f"{base}/v1.1/user_info", headers={"X-Request-Id": rid}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        answered.append(rid)
            except aiohttp.ClientError:
                return


async def _burst_and_kill(stack: Stack) -> list[str]:
    answered: list[str] = []
    bots = [asyncio.ensure_future(_bot(stack.base, answered)) for _ in range(5)]
    await asyncio.sleep(0.6)
    stack.daemon.kill9()
    await asyncio.gather(*bots)
    return answered


def test_kill9_mid_burst_loses_no_answered_call(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Every call a client got an answer for has its complete line, even after kill -9."""
    stack: Stack = make_stack(delay_ms=5)
    answered = asyncio.run(_burst_and_kill(stack))
    assert len(answered) > 10
    raw = audit_file(stack).read_text()
    complete = raw.splitlines(keepends=True)
    recorded = {json.loads(line)["request_id"] for line in complete if line.endswith("\n")}
    assert set(answered) <= recorded
    stack.daemon = start_daemon(stack)  # a restart repairs a torn tail, if the kill made one
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert all(e["request_id"] for e in entries(stack))


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_no_trading_while_the_audit_log_cannot_be_written(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A full disk (file size limit on the daemon): the call in progress answers, then 503 until fixed."""
    stack: Stack = make_stack()
    post = ["-X", "POST"]
    assert curl_json(f"{stack.base}/v1.1/user_info", *post)[0] == 200
    size = audit_file(stack).stat().st_size
    pid = str(stack.daemon.proc.pid)
    subprocess.run(["prlimit", "--pid", pid, f"--fsize={size + 20}:unlimited"], check=True)
    assert curl_json(f"{stack.base}/v1.1/user_info", *post)[0] == 200  # executed: its answer goes back
    before = stack.sim_stats()["executed"]["user_info"]
    status, body = curl_json(f"{stack.base}/v1.1/user_info", *post)
    assert (status, body["proxy_error"]) == (503, "audit_unwritable")
    assert stack.sim_stats()["executed"]["user_info"] == before  # refused before signing
    subprocess.run(["prlimit", "--pid", pid, "--fsize=unlimited:unlimited"], check=True)
    assert curl_json(f"{stack.base}/v1.1/user_info", *post)[0] == 200
    late = [e for e in entries(stack) if e.get("late")]
    assert len(late) == 1 and len(entries(stack)) == 3


def test_no_signing_with_a_nonce_that_cannot_be_made_durable(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Nonce state unwritable (ENOSPC on the ceiling's fsync) from the start: 503 state_unwritable,
    /readyz says why, nothing signed; once the disk takes writes, the next call goes through."""
    stack: Stack = make_stack()
    stack.daemon.stop()
    disk = NonceDisk(stack.tmp)
    disk.fail.touch()
    stack.daemon = start_daemon(stack, "--state-dir", str(stack.tmp / "fresh-state"), env=disk.env())
    status, body = curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")
    assert (status, body["proxy_error"]) == (503, "state_unwritable")
    assert "No space left" in body["error"]
    assert stack.sim_stats()["executed"] == {}  # nothing was signed with a nonce not on disk
    status, ready = curl_json(f"{stack.base}/readyz")
    assert status == 503 and "nonce state" in ready["reason"]
    disk.fail.unlink()
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert curl_json(f"{stack.base}/readyz")[0] == 200


def test_a_disk_that_fails_later_stops_signing_only_above_the_durable_ceiling(make_stack) -> None:  # type: ignore[no-untyped-def]
    """The disk fails after the first ceiling landed: calls go on with nonces below that durable ceiling
    (going on loses nothing), while /readyz is 503 and names the nonce state."""
    stack: Stack = make_stack()
    stack.daemon.stop()
    disk = NonceDisk(stack.tmp)
    stack.daemon = start_daemon(stack, env=disk.env())
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    state = next((stack.tmp / "exmo-proxy-state" / "nonces").glob("*.json"))
    ceiling = json.loads(state.read_text())["ceiling"]
    disk.fail.touch()
    deadline = time.monotonic() + 15
    while curl_json(f"{stack.base}/readyz")[0] == 200:  # once half the window is used the write ahead fails
        assert time.monotonic() < deadline, "no write ahead was tried"
        assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert "nonce state" in curl_json(f"{stack.base}/readyz")[1]["reason"]
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert stack.sim_stats()["last_nonce"][stack.key] <= ceiling
