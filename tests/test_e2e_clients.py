"""Real client libraries pointed at the daemon: ccxt (Python) and a Node.js fetch bot (SPEC §5)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import ccxt
import pytest

from tests.conftest import Stack, cli

pytestmark = pytest.mark.slow


@pytest.fixture
def exchange(stack: Stack) -> ccxt.exmo:
    """ccxt's exmo with placeholder credentials and only its URLs changed."""
    client = ccxt.exmo({"apiKey": "placeholder-key", "secret": "placeholder-secret"})
    client.urls["api"] = {**client.urls["api"], "public": stack.base, "private": stack.base}
    return client


def test_ccxt_trades_through_the_daemon(exchange: ccxt.exmo, stack: Stack) -> None:
    """fetch_balance, create_order, fetch_open_orders, cancel_order all work unchanged."""
    balance = exchange.fetch_balance()
    assert balance["total"]["BTC"] > 0
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 20000, {"client_id": 777001})
    assert order["id"]
    open_ids = [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")]
    assert order["id"] in open_ids
    exchange.cancel_order(order["id"], "BTC/USDT")
    assert order["id"] not in [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")]
    assert stack.sim_stats()["client_ids"].get("777001") == 1


def test_ccxt_sees_exmo_errors_as_exmo_errors(exchange: ccxt.exmo) -> None:
    """EXMO's own errors still reach ccxt's error mapping (here: insufficient funds)."""
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order("BTC/USDT", "limit", "buy", 900, 60000)


def test_ccxt_withdraw_is_refused_by_the_daemon(exchange: ccxt.exmo) -> None:
    """A money-out call is refused before it is signed; ccxt raises instead of withdrawing."""
    with pytest.raises(ccxt.BaseError) as info:
        exchange.withdraw("BTC", 0.1, "bc1qexampleaddress")
    assert "withdrawals_locked" in str(info.value)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node (apt-get install nodejs)")
def test_node_fetch_bot(stack: Stack) -> None:
    """A Node.js bot with plain fetch and no keys trades through the daemon."""
    script = Path(__file__).parent / "clients" / "bot.mjs"
    result = subprocess.run(["node", str(script), stack.base], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["listed"] is True and summary["has_ticker"] is True and summary["order_id"]


def test_ccxt_with_a_client_token(make_stack) -> None:  # type: ignore[no-untyped-def]
    """With tokens configured, ccxt works by adding one Authorization header, as the README says."""
    stack: Stack = make_stack()
    added = cli("client", "add", "ccxt-bot", "--account", "main", "--config", str(stack.config))
    token = added.stdout.split()[-1]
    stack.restart_daemon()
    client = ccxt.exmo({"apiKey": "placeholder-key", "secret": "placeholder-secret"})
    client.urls["api"] = {**client.urls["api"], "public": stack.base, "private": stack.base}
    with pytest.raises(ccxt.BaseError):
        client.fetch_balance()
    client.headers = {"Authorization": f"Bearer {token}"}
    assert client.fetch_balance()["total"]["BTC"] > 0


def test_ccxt_retry_with_an_idempotency_key_orders_once(exchange: ccxt.exmo, stack: Stack) -> None:
    """A ccxt bot passes the key per order in `params` (README); sending the same create_order again,
    as a bot does after a timeout, returns the same order and places it once."""
    client_id = secrets.randbelow(10**9) + 1
    params = {"client_id": client_id, "idempotency_key": str(uuid.uuid4())}
    orders = [exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 20000, params) for _ in range(2)]
    assert orders[0]["id"] == orders[1]["id"]
    assert stack.sim_stats()["client_ids"].get(str(client_id)) == 1


def test_ccxt_idempotency_key_as_a_header_after_loading_markets(exchange: ccxt.exmo, stack: Stack) -> None:
    """The header works too, once markets are loaded: ccxt sends `exchange.headers` with every request,
    and a key names one call."""
    exchange.load_markets()
    client_id = secrets.randbelow(10**9) + 1
    exchange.headers = {"Idempotency-Key": str(uuid.uuid4())}
    orders = [exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 20000, {"client_id": client_id})
              for _ in range(2)]
    assert orders[0]["id"] == orders[1]["id"]
    assert stack.sim_stats()["client_ids"].get(str(client_id)) == 1
