"""Safety of funds end to end: tokens, scopes, money-out lock, pre-trade limits, kill switch."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Stack, cli, curl_json

pytestmark = pytest.mark.slow

ORDER = ["-d", "pair=BTC_USDT", "-d", "quantity=0.01", "-d", "price=20000", "-d", "type=buy"]
WITHDRAW = ["-d", "amount=0.1", "-d", "currency=BTC", "-d", "address=bc1qgood"]


def add_account_rules(stack: Stack, *lines: str) -> None:
    """Add policy keys under accounts.main by editing the YAML, as a user would."""
    text = stack.config.read_text()
    text = re.sub(r"(    key: K-\w+\n)", lambda m: m.group(1) + "".join(f"    {ln}\n" for ln in lines), text)
    stack.config.write_text(text)


def add_client(stack: Stack, name: str, *args: str) -> str:
    result = cli("client", "add", name, "--config", str(stack.config), *args)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("exmo-proxy_") and token not in stack.config.read_text()
    return token


def call(stack: Stack, method: str, *args: str, token: str | None = None) -> tuple[int, Any]:
    auth = ["-H", f"Authorization: Bearer {token}"] if token else []
    return curl_json(f"{stack.base}/v1.1/{method}", "-X", "POST", *auth, *args)


def executed(stack: Stack, method: str) -> int:
    return int(stack.sim_stats()["executed"].get(method, 0))


def test_tokens_and_client_scopes(make_stack) -> None:  # type: ignore[no-untyped-def]
    """No/wrong token → 401; a client scoped to user_info cannot trade; probes need no token."""
    stack: Stack = make_stack()
    reader = add_client(stack, "reader", "--account", "main", "--allow", "user_info")
    trader = add_client(stack, "trader", "--account", "main")
    stack.restart_daemon()
    status, body = call(stack, "user_info")
    assert (status, body["proxy_error"]) == (401, "unauthorized")
    wrong = "exmo-proxy_" + "x" * 43
    status, body = call(stack, "user_info", token=wrong)
    assert status == 401 and wrong not in json.dumps(body) and reader[12:] not in json.dumps(body)
    assert call(stack, "user_info", token=reader)[0] == 200
    status, body = call(stack, "order_create", *ORDER, token=reader)
    assert (status, body["proxy_error"]) == (403, "client_method_not_allowed")
    assert executed(stack, "order_create") == 0
    assert call(stack, "order_create", *ORDER, token=trader)[1]["result"] is True
    assert curl_json(f"{stack.base}/v1.1/ticker", "-H", f"Authorization: Bearer {reader}")[0] == 200
    assert curl_json(f"{stack.base}/v1.1/ticker")[0] == 401
    assert curl_json(f"{stack.base}/healthz")[0] == 200
    for token in (reader, trader):
        assert token not in stack.logs()


def test_withdrawals_need_account_and_client_opt_in(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Money out: locked by default; the account's opt-in alone is not enough for a client."""
    stack: Stack = make_stack()
    status, body = call(stack, "withdraw_crypt", *WITHDRAW)
    assert (status, body["proxy_error"]) == (403, "withdrawals_locked")
    add_account_rules(stack, "allow_withdrawals: true", "withdraw_addresses: {BTC: [bc1qgood]}")
    plain = add_client(stack, "plain", "--account", "main")
    payer = add_client(stack, "payer", "--account", "main", "--allow", "user_info", "withdraw_crypt")
    stack.restart_daemon()
    status, body = call(stack, "withdraw_crypt", *WITHDRAW, token=plain)
    assert (status, body["proxy_error"]) == (403, "client_withdrawals")
    bad_address = ["-d", "amount=0.1", "-d", "currency=BTC", "-d", "address=bc1qattacker"]
    status, body = call(stack, "withdraw_crypt", *bad_address, token=payer)
    assert (status, body["proxy_error"]) == (403, "withdraw_address")
    assert executed(stack, "withdraw_crypt") == 0
    status, body = call(stack, "withdraw_crypt", *WITHDRAW, token=payer)
    assert status == 200 and body["result"] is True and body["task_id"]
    assert executed(stack, "withdraw_crypt") == 1


@pytest.mark.parametrize(
    ("order", "rule"),
    [
        pytest.param(["-d", "pair=BTC_USDT", "-d", "quantity=0.02", "-d", "price=20000", "-d", "type=buy"],
                     "max_order_quantity", id="quantity"),
        pytest.param(["-d", "pair=BTC_USDT", "-d", "quantity=0.01", "-d", "price=90000", "-d", "type=sell"],
                     "max_order_notional", id="notional"),
        pytest.param(["-d", "pair=BTC_USDT", "-d", "quantity=0.001", "-d", "price=0",
                      "-d", "type=market_buy"], "max_order_notional", id="market-without-price"),
        pytest.param(["-d", "pair=LTC_USDT", "-d", "quantity=1", "-d", "price=50", "-d", "type=buy"],
                     "pair_not_allowed", id="pair"),
    ],
)
def test_orders_over_limits_never_reach_exmo(  # type: ignore[no-untyped-def]
    make_stack, order: list[str], rule: str
) -> None:
    """An order over a pre-trade limit is refused with 403 before it is signed."""
    stack: Stack = make_stack()
    add_account_rules(stack, "allowed_pairs: [BTC_USDT, ETH_USDT]", "max_order_quantity: {BTC_USDT: 0.01}",
                      "max_order_notional: {BTC_USDT: 500}")
    stack.restart_daemon()
    status, body = call(stack, "order_create", *order)
    assert (status, body["proxy_error"]) == (403, rule), body
    assert executed(stack, "order_create") == 0
    assert call(stack, "order_create", *ORDER)[1]["result"] is True  # 0.01 x 20000 = 200: within


def test_halt_blocks_new_orders_not_cancels_and_survives_restart(make_stack) -> None:  # type: ignore[no-untyped-def]
    """halt on: create refused, cancel works; a restart keeps the halt; halt off resumes."""
    stack: Stack = make_stack()
    order_id = call(stack, "order_create", *ORDER)[1]["order_id"]
    config = ["--config", str(stack.config)]
    result = cli("halt", "on", "--reason", "test panic", *config)
    assert result.returncode == 0 and "HALTED" in result.stdout
    status, body = call(stack, "order_create", *ORDER)
    assert (status, body["proxy_error"]) == (403, "halted")
    stack.restart_daemon()
    assert call(stack, "order_create", *ORDER)[1]["proxy_error"] == "halted"
    status, body = call(stack, "order_cancel", "-d", f"order_id={order_id}")
    assert status == 200 and body["result"] is True
    assert call(stack, "user_info")[0] == 200
    assert call(stack, "some_future_method")[1]["proxy_error"] == "halted"  # unknown: refused while halted
    assert executed(stack, "order_create") == 1
    assert "trading is ON" in cli("halt", "off", *config).stdout
    assert call(stack, "order_create", *ORDER)[1]["result"] is True


def test_read_only_account_refuses_trading(make_stack) -> None:  # type: ignore[no-untyped-def]
    """read_only: true lets reads through and refuses anything that trades."""
    stack: Stack = make_stack()
    add_account_rules(stack, "read_only: true")
    stack.restart_daemon()
    assert call(stack, "user_open_orders")[0] == 200
    status, body = call(stack, "order_create", *ORDER)
    assert (status, body["proxy_error"]) == (403, "read_only")


def test_non_loopback_listen_needs_clients(make_stack) -> None:  # type: ignore[no-untyped-def]
    """0.0.0.0 is refused without clients and accepted (check) once a client exists."""
    stack: Stack = make_stack()
    args = ["check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file),
            "--listen", "0.0.0.0:18999"]
    refused = cli(*args)
    assert refused.returncode == 2 and "loopback" in refused.stderr
    add_client(stack, "lan-bot", "--account", "main")
    assert cli(*args).returncode == 0
