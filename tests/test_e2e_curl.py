"""End to end with curl: the real daemon and simulator processes on loopback (SPEC §5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSPHRASE, Stack, curl, curl_json


def post(stack: Stack, method: str, *args: str) -> tuple[int, dict[str, Any]]:
    return curl_json(f"{stack.base}/v1.1/{method}", "-X", "POST", *args)


def executed(stack: Stack, method: str) -> int:
    return int(stack.sim_stats()["executed"].get(method, 0))


def test_user_info_is_signed_and_answered(stack: Stack) -> None:
    """A bare POST user_info comes back with EXMO's balances: the daemon signed it."""
    before = executed(stack, "user_info")
    status, body = post(stack, "user_info")
    assert status == 200
    assert "balances" in body and body["balances"]["BTC"]
    assert executed(stack, "user_info") == before + 1


def test_order_lifecycle_with_form_bodies(stack: Stack) -> None:
    """order_create → user_open_orders → order_cancel → gone, all as plain form posts."""
    status, created = post(stack, "order_create", "-d", "pair=BTC_USDT", "-d", "quantity=0.01",
                           "-d", "price=20000", "-d", "type=buy")
    assert status == 200 and created["result"] is True, created
    order_id = str(created["order_id"])
    _, open_orders = post(stack, "user_open_orders")
    assert order_id in [o["order_id"] for o in open_orders.get("BTC_USDT", [])]
    status, cancelled = post(stack, "order_cancel", "-d", f"order_id={order_id}")
    assert status == 200 and cancelled["result"] is True, cancelled
    _, open_orders = post(stack, "user_open_orders")
    assert order_id not in [o["order_id"] for o in open_orders.get("BTC_USDT", [])]


def test_json_body_is_sent_as_a_form(stack: Stack) -> None:
    """A flat JSON object works like the same form; numbers keep their exact text."""
    status, body = post(stack, "order_create", "-H", "Content-Type: application/json", "-d",
                        json.dumps({"pair": "BTC_USDT", "quantity": "0.001", "price": "0",
                                    "type": "market_buy", "client_id": 4242}))
    assert status == 200 and body["result"] is True, body
    assert stack.sim_stats()["client_ids"].get("4242") == 1


def test_query_string_moves_into_the_body(stack: Stack) -> None:
    """POST with a query string succeeds: EXMO would refuse it (40038), so the daemon moves it."""
    status, body = curl_json(f"{stack.base}/v1.1/user_trades?pair=BTC_USDT&limit=10", "-X", "POST")
    assert status == 200 and "40038" not in json.dumps(body)
    assert isinstance(body, dict)


def test_client_nonce_key_and_sign_are_replaced(stack: Stack) -> None:
    """A library's own nonce, Key and Sign (placeholders) are dropped and replaced."""
    status, body = post(stack, "user_info", "-H", "Key: K-placeholder", "-H", "Sign: " + "0" * 128,
                        "-d", "nonce=1")
    assert status == 200 and "balances" in body, body


@pytest.mark.parametrize("how", ["GET", "POST"])
def test_public_methods_pass_through_byte_for_byte(stack: Stack, how: str) -> None:
    """Public calls are forwarded unsigned and the answer is returned unchanged."""
    args = ["-X", how]
    direct = curl(f"{stack.sim.url}/v1.1/pair_settings", *args)
    proxied = curl(f"{stack.base}/v1.1/pair_settings", *args)
    assert proxied == direct
    status, ticker = curl_json(f"{stack.base}/v1.1/ticker", *args)
    assert status == 200 and "BTC_USDT" in ticker


def test_public_get_keeps_its_query(stack: Stack) -> None:
    """GET order_book?pair=... reaches EXMO with the pair."""
    status, book = curl_json(f"{stack.base}/v1.1/order_book?pair=BTC_USDT&limit=5")
    assert status == 200 and list(book) == ["BTC_USDT"]


def test_account_by_header_and_by_path(stack: Stack) -> None:
    """X-Exmo-Account and /accounts/NAME/ select the account; an unknown one is a 404."""
    assert post(stack, "user_info", "-H", "X-Exmo-Account: main")[0] == 200
    status, _ = curl_json(f"{stack.base}/accounts/main/v1.1/user_info", "-X", "POST")
    assert status == 200
    status, body = post(stack, "user_info", "-H", "X-Exmo-Account: nobody")
    assert (status, body["proxy_error"]) == (404, "unknown_account")


def test_v1_paths_work_too(stack: Stack) -> None:
    """The old /v1/ prefix used by EXMO's official examples is signed the same way."""
    status, body = curl_json(f"{stack.base}/v1/user_info/", "-X", "POST")
    assert status == 200 and "balances" in body


def test_unknown_method_is_answered_by_exmo(stack: Stack) -> None:
    """An unknown private method is signed and forwarded; EXMO's own 40015 comes back."""
    status, body = post(stack, "no_such_method")
    assert status == 200 and body["result"] is False and "40015" in body["error"]


@pytest.mark.parametrize(
    ("args", "path", "status", "slug"),
    [
        pytest.param(["-X", "GET"], "/v1.1/user_info", 405, "post_required", id="private-get"),
        pytest.param(["-X", "POST"], "/v2/user_info", 404, "unknown_route", id="unknown-route"),
        pytest.param(["-X", "DELETE"], "/v1.1/ticker", 405, "http_method_not_allowed",
                     id="delete-public"),
        pytest.param(["-X", "POST"], "/v1.1/User_Info", 400, "bad_method", id="bad-method"),
        pytest.param(["-X", "POST", "-H", "Content-Type: application/json", "-d", '{"a": {"b": 1}}'],
                     "/v1.1/user_info", 400, "bad_json", id="nested-json"),
        pytest.param(["-X", "POST", "-d", "pair=A&pair=B"], "/v1.1/user_trades", 400,
                     "duplicate_parameter", id="duplicate"),
        pytest.param(["-X", "POST", "-d", "amount=1&currency=BTC&address=x"], "/v1.1/withdraw_crypt", 403,
                     "withdrawals_locked", id="withdrawal"),
        pytest.param(["-X", "POST", "-d", "code=EX-CODE"], "/v1.1/excode_create", 403,
                     "withdrawals_locked", id="excode"),
        pytest.param(["-X", "POST", "-d", "x=" + "a" * 70000], "/v1.1/user_info", 413, "body_too_large",
                     id="too-large"),
        pytest.param(["-X", "POST", "-H", "Content-Type: application/json", "-d", "[" * 30000],
                     "/v1.1/user_info", 400, "bad_json", id="deeply-nested-json"),
        pytest.param(["-X", "POST", "-H", "Origin: https://evil.example", "-H", "Content-Type: text/plain",
                      "-d", "pair=BTC_USDT&quantity=1&price=0&type=market_buy"], "/v1.1/order_create", 403,
                     "browser_refused", id="web-page-origin"),
        pytest.param(["-X", "POST", "-H", "Sec-Fetch-Site: cross-site"], "/v1.1/user_info", 403,
                     "browser_refused", id="browser-fetch-metadata"),
        pytest.param(["-X", "POST", "-H", "Host: evil.example:8080"], "/v1.1/user_info", 403,
                     "host_refused", id="dns-rebinding-host"),
        pytest.param(["-H", "Host: attacker.test"], "/readyz", 403, "host_refused", id="rebinding-readyz"),
    ],
)
def test_own_errors_are_exmo_shaped(stack: Stack, args: list[str], path: str, status: int,
                                    slug: str) -> None:
    """The daemon's refusals are non-200 with result:false, a 'proxy:' error and a slug."""
    before = stack.sim_stats()["executed"]
    got, body = curl_json(f"{stack.base}{path}", *args)
    assert got == status
    assert body["result"] is False and body["error"].startswith("proxy: ") and body["proxy_error"] == slug
    assert stack.sim_stats()["executed"] == before


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.2", "LOCALHOST."])
def test_local_host_names_are_accepted(stack: Stack, host: str) -> None:
    """Bots addressing the daemon by any loopback name (with or without port) are served."""
    port = stack.base.rsplit(":", 1)[1]
    for value in (host, f"{host}:{port}"):
        assert post(stack, "user_info", "-H", f"Host: {value}")[0] == 200


def test_health_endpoints(stack: Stack) -> None:
    """/healthz and /readyz answer 200 without touching EXMO."""
    assert curl_json(f"{stack.base}/healthz")[0] == 200
    status, body = curl_json(f"{stack.base}/readyz")
    assert status == 200 and body["status"] == "ready"


def _proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def test_secret_never_leaves_the_daemon(stack: Stack) -> None:
    """Secret and passphrase are absent from the config, logs, argv and environment."""
    post(stack, "user_info")
    post(stack, "withdraw_crypt", "-d", "amount=1")
    pid = stack.daemon.proc.pid
    for where, data in [("config", stack.config.read_bytes()), ("log", stack.logs().encode()),
                        ("cmdline", _proc_file(pid, "cmdline")), ("environ", _proc_file(pid, "environ"))]:
        assert stack.secret.encode() not in data, where
        assert PASSPHRASE.encode() not in data, where
    assert "Sign" not in stack.logs()


def test_the_daemon_decrypts_in_a_child_and_never_loads_cryptography(stack: Stack) -> None:
    """The Argon2id unlock ran in the short-lived unseal child (unseal.py): no cryptography library is
    mapped into the daemon, and no child is left behind."""
    pid = stack.daemon.proc.pid
    maps = _proc_file(pid, "maps").decode()
    assert "/cryptography/" not in maps and "_rust.abi3" not in maps
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children == []


@pytest.mark.parametrize("offered", ["ab\udcffcd", "a b", "x" * 65, ""])
def test_odd_request_ids_are_replaced(stack: Stack, offered: str) -> None:
    """An X-Request-Id that is not a plain token is replaced by a fresh one, never echoed or logged."""
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-X", "POST", "-H",
                          f"X-Request-Id: {offered}", f"{stack.base}/v1.1/user_info"],
                         capture_output=True, check=True).stdout.decode(errors="replace")
    assert " 200 " in out.splitlines()[0]
    rid = next(line.split(":", 1)[1].strip() for line in out.splitlines()
               if line.lower().startswith("x-request-id:"))
    assert len(rid) == 32 and rid != offered


def test_a_plain_request_id_is_kept(stack: Stack) -> None:
    """A client's own X-Request-Id of letters, digits and . _ : - comes back unchanged."""
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-H", "X-Request-Id: bot-1.42:a_b",
                          f"{stack.base}/healthz"], capture_output=True, text=True, check=True).stdout
    assert "x-request-id: bot-1.42:a_b" in out.lower()
