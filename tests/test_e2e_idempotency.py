"""End to end: `Idempotency-Key` turns a bot's retry into the first call's answer, never a second order.

The simulator counts what it executed by `client_id`, so "one execution" is read off the exchange, not
off the daemon. Hung and killed calls are in test_e2e_upstream_faults.py (they need a broken upstream).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack, curl

pytestmark = pytest.mark.slow


def _order(stack: Stack, key: str, client_id: int, quantity: str = "0.001",
           *extra: str) -> tuple[int, bytes, dict[str, str]]:
    """A keyed limit order through the daemon: (status, body, headers)."""
    header = f"Idempotency-Key: {key}" if key else "Idempotency-Key;"  # `Name;` is how curl sends ""
    out = subprocess.run(
        ["curl", "-s", "-S", "--max-time", "30", "-D", "-", "-X", "POST", f"{stack.base}/v1.1/order_create",
         "-H", header, "-d", "pair=BTC_USDT", "-d", f"quantity={quantity}", "-d", "price=20000",
         "-d", "type=buy", "-d", f"client_id={client_id}", *extra],
        capture_output=True, check=True, timeout=35).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), body, headers


def _executed(stack: Stack, client_id: int) -> int:
    return int(stack.sim_stats()["client_ids"].get(str(client_id), 0))


def _new() -> tuple[str, int]:
    return secrets.token_hex(16), secrets.randbelow(10**9) + 1


def test_a_retry_gets_the_first_answer_and_is_not_sent(stack: Stack) -> None:
    """The same key, account, method and parameters twice: one order at the exchange, the same status
    and body twice, the second marked Idempotent-Replayed."""
    key, client_id = _new()
    first = _order(stack, key, client_id)
    again = _order(stack, key, client_id)
    assert first[0] == 200 and "order_id" in json.loads(first[1])
    assert again[:2] == first[:2]
    assert again[2].get("idempotent-replayed") == "true" and "idempotent-replayed" not in first[2]
    assert _executed(stack, client_id) == 1


def test_the_same_key_for_another_call_is_422_and_not_sent(stack: Stack) -> None:
    """A key names one call: other parameters under it are refused, and nothing reaches the exchange."""
    key, client_id = _new()
    assert _order(stack, key, client_id)[0] == 200
    status, body, _ = _order(stack, key, client_id, "0.002")
    assert (status, json.loads(body)["proxy_error"]) == (422, "idempotency_mismatch")
    assert _executed(stack, client_id) == 1


def test_keys_belong_to_an_account(stack: Stack) -> None:
    """A key's record is found again whichever way the account is named (header, path, default)."""
    key, client_id = _new()
    first = _order(stack, key, client_id)
    again = _order(stack, key, client_id, "0.001", "-H", "X-Exmo-Account: main")
    assert again[:2] == first[:2] and _executed(stack, client_id) == 1


@pytest.mark.parametrize("value", ["", "a b", "ключ", "x" * 256])
def test_a_malformed_key_is_400(stack: Stack, value: str) -> None:
    """1 to 255 visible ASCII characters (draft-ietf-httpapi-idempotency-key-header); else 400, unsent."""
    client_id = _new()[1]
    status, body, _ = _order(stack, value, client_id)
    assert (status, json.loads(body)["proxy_error"]) == (400, "bad_idempotency_key")
    assert _executed(stack, client_id) == 0


def test_a_retry_after_a_restart_is_still_not_sent(stack: Stack) -> None:
    """The record outlives the daemon: after a restart the retry gets the first answer."""
    key, client_id = _new()
    first = _order(stack, key, client_id)
    stack.restart_daemon()
    again = _order(stack, key, client_id)
    assert again[:2] == first[:2] and again[2].get("idempotent-replayed") == "true"
    assert _executed(stack, client_id) == 1


def test_replays_are_audited_and_counted(stack: Stack) -> None:
    """The audit log marks the retry `replayed` (no nonce: nothing was signed); metrics count it."""
    def replays() -> float:
        text = curl(f"{stack.base}/metrics")[1].decode()
        found = [s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "exmo_proxy_idempotent_replays_total"]
        return found[0]

    before = replays()
    key, client_id = _new()
    _order(stack, key, client_id)
    _order(stack, key, client_id)
    assert replays() == before + 1
    lines = [json.loads(line) for line in (stack.tmp / "exmo-proxy-state" / "audit.jsonl").read_text()
             .splitlines()]
    mine = [e for e in lines if e["params"].get("client_id") == str(client_id)]
    assert [(e["outcome"], e["nonce"] is None) for e in mine] == [("answered", False), ("replayed", True)]


def test_concurrent_calls_with_one_key_execute_once(make_stack: Callable[..., Stack]) -> None:
    """Eight copies of one keyed order sent at once (the exchange takes up to 300 ms): one execution,
    eight identical answers."""
    stack = make_stack(delay_ms=300)
    key, client_id = _new()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _order(stack, key, client_id), range(8)))
    assert {(status, body) for status, body, _ in answers} == {answers[0][:2]}
    assert answers[0][0] == 200
    assert sum(h.get("idempotent-replayed") == "true" for _, _, h in answers) == 7
    assert _executed(stack, client_id) == 1


def test_without_a_key_a_retry_is_a_new_call(stack: Stack) -> None:
    """The header is opt-in: the same order sent twice without it is placed twice, as EXMO would."""
    client_id = _new()[1]
    args: list[Any] = ["-X", "POST", "-d", "pair=BTC_USDT", "-d", "quantity=0.001", "-d", "price=20000",
                       "-d", "type=buy", "-d", f"client_id={client_id}"]
    for _ in range(2):
        assert curl(f"{stack.base}/v1.1/order_create", *args)[0] == 200
    assert _executed(stack, client_id) == 2
