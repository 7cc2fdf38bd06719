"""The simulator's WebSocket API (exmo-api.md §6): greeting, login, subscriptions, snapshots, pushed
updates when the account acts over REST, errors, and the maintenance drop.

Login signatures are made here with hmac/base64 directly, never with the proxy's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import pytest

from proxy.simulator import create_simulator_app
from tests.test_simulator import KEY, SECRET, Client, MakeClient, Trader, config

Socket = aiohttp.ClientWebSocketResponse


async def _open(client: Client, path: str) -> Socket:
    ws = await client.ws_connect(path)
    greeting = await ws.receive_json(timeout=5)
    assert (greeting["event"], greeting["code"], greeting["message"]) == ("info", 1, "connection established")
    assert greeting["session_id"] and isinstance(greeting["ts"], int)
    return ws


def _login_frame(nonce: int, key: str = KEY, secret: str = SECRET) -> dict[str, Any]:
    digest = hmac.new(secret.encode(), f"{key}{nonce}".encode(), hashlib.sha512).digest()
    sign = base64.b64encode(digest).decode()
    return {"id": 7, "method": "login", "api_key": key, "sign": sign, "nonce": nonce}


async def _frames(ws: Socket, count: int) -> list[dict[str, Any]]:
    return [await ws.receive_json(timeout=5) for _ in range(count)]


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    return await aiohttp_client(create_simulator_app(config()))


async def test_public_subscriptions_ack_then_snapshot(client: Client) -> None:
    """One ack per topic, then its snapshot; unsubscribe is acknowledged too."""
    ws = await _open(client, "/v1/public")
    topics = ["spot/ticker:BTC_USDT", "spot/trades:ETH_USDT"]
    await ws.send_json({"id": 1, "method": "subscribe", "topics": topics})
    ack, snap, ack2, snap2 = await _frames(ws, 4)
    assert (ack["event"], ack["id"], ack["topic"]) == ("subscribed", 1, "spot/ticker:BTC_USDT")
    assert snap["event"] == "snapshot" and "buy_price" in snap["data"]
    assert (ack2["topic"], snap2["topic"]) == ("spot/trades:ETH_USDT", "spot/trades:ETH_USDT")
    # numbers in WS frames (ccxt.pro's exmo.py quotes EXMO's spot/trades frame); REST sends strings
    assert isinstance(snap2["data"][0]["trade_id"], int) and isinstance(snap2["data"][0]["date"], int)
    await ws.send_json({"id": 2, "method": "unsubscribe", "topics": ["spot/ticker:BTC_USDT"]})
    assert (await ws.receive_json(timeout=5))["event"] == "unsubscribed"
    await ws.close()


SUBSCRIBE = '{"id":3,"method":"subscribe","topics":["%s"]}'


@pytest.mark.parametrize(("frame", "code"), [
    pytest.param("not json", 201006, id="not-json"),
    pytest.param(SUBSCRIBE % "spot/ticker:NOPE_USDC", 201030, id="unknown-pair"),
    pytest.param(SUBSCRIBE % "spot/weather:BTC_USDT", 201012, id="unknown-topic"),
    pytest.param(SUBSCRIBE % "spot/wallet", 201012, id="private-on-public"),
    pytest.param('{"id":3,"method":"dance"}', 201008, id="unknown-method"),
    pytest.param('{"id":3,"method":"login","api_key":"K-x","sign":"x","nonce":1}', 201008,
                 id="login-on-public"),
])
async def test_bad_frames_get_exmo_error_codes(client: Client, frame: str, code: int) -> None:
    """EXMO's error frames (exmo-api.md §6.2): code, message, and the request's id when it had one."""
    ws = await _open(client, "/v1/public")
    await ws.send_str(frame)
    error = await ws.receive_json(timeout=5)
    assert (error["event"], error["code"]) == ("error", code) and error["message"]
    await ws.close()


async def test_a_duplicate_subscription_is_refused(client: Client) -> None:
    """Subscribing twice to one topic is error 201016; the first subscription stands."""
    ws = await _open(client, "/v1/public")
    frame = {"id": 1, "method": "subscribe", "topics": ["spot/ticker:LTC_USDT"]}
    await ws.send_json(frame)
    await _frames(ws, 2)
    await ws.send_json(frame)
    assert (await ws.receive_json(timeout=5))["code"] == 201016
    await ws.close()


async def test_login_checks_key_sign_and_nonce(client: Client) -> None:
    """A good login is `logged_in` with the request's id; a bad sign, or a nonce not above the key's
    last (REST included), is an error and the socket stays logged out."""
    ws = await _open(client, "/v1/private")
    nonce = int(time.time() * 1000)
    bad = {**_login_frame(nonce), "sign": base64.b64encode(b"x" * 64).decode()}
    await ws.send_json(bad)
    assert (await ws.receive_json(timeout=5))["event"] == "error"
    await ws.send_json({"id": 2, "method": "subscribe", "topics": ["spot/wallet"]})
    assert (await ws.receive_json(timeout=5))["event"] == "error"
    await ws.send_json(_login_frame(nonce))
    assert await ws.receive_json(timeout=5) == {"ts": pytest.approx(nonce, abs=60_000), "event": "logged_in",
                                                "id": 7}
    await ws.send_json(_login_frame(nonce))  # the same nonce again
    assert (await ws.receive_json(timeout=5))["code"] == 40009
    await ws.close()


async def test_private_topics_follow_the_account_over_rest(client: Client) -> None:
    """Snapshots of wallet and orders, then an order placed and cancelled over REST arrives as
    updates: the order open, the reserved balance, the order cancelled."""
    ws = await _open(client, "/v1/private")
    nonce = int(time.time() * 1000)
    await ws.send_json(_login_frame(nonce))
    assert (await ws.receive_json(timeout=5))["event"] == "logged_in"
    await ws.send_json({"id": 2, "method": "subscribe", "topics": ["spot/wallet", "spot/orders"]})
    _, wallet, _, orders = await _frames(ws, 4)
    assert wallet["data"]["balances"]["USDT"] and orders["data"] == []
    trader = Trader(client)
    trader.nonce = nonce  # one counter per key, WebSocket login included
    placed = await trader.post("order_create", pair="BTC_USDT", quantity="0.01", price="20000", type="buy")
    frames = await _frames(ws, 2)
    order = next(f for f in frames if f["topic"] == "spot/orders")["data"]
    usdt = next(f for f in frames if f["topic"] == "spot/wallet")["data"]
    assert (order["order_id"], order["status"], order["type"]) == (str(placed["order_id"]), "open", "buy")
    assert (usdt["currency"], usdt["reserved"]) == ("USDT", "200")
    await trader.post("order_cancel", order_id=placed["order_id"])
    frames = await _frames(ws, 2)
    cancelled = next(f for f in frames if f["topic"] == "spot/orders")["data"]
    assert (cancelled["order_id"], cancelled["status"]) == (str(placed["order_id"]), "cancelled")
    await ws.close()


async def test_maintenance_closes_every_socket_with_the_notice(client: Client) -> None:
    """EXMO's maintenance drop: the info frame with code 2, then the socket closes; a new one works."""
    ws = await _open(client, "/v1/public")
    answer = await (await client.post("/_sim/ws/maintenance")).json()
    assert answer == {"closed": 1}
    notice = await ws.receive_json(timeout=5)
    assert (notice["event"], notice["code"], notice["message"]) == ("info", 2, "maintenance in progress")
    assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await (await _open(client, "/v1/public")).close()


async def test_the_websocket_paths_still_answer_rest(client: Client) -> None:
    """Without an upgrade, /v1/public is a REST path like any other (no such method)."""
    resp = await client.post("/v1/public")
    assert resp.status == 200 and (await resp.json())["result"] is False


async def test_a_fill_over_rest_is_a_user_trades_update(client: Client) -> None:
    """A market order that fills arrives on spot/user_trades with EXMO's trade fields."""
    ws = await _open(client, "/v1/private")
    nonce = int(time.time() * 1000)
    await ws.send_json(_login_frame(nonce))
    await ws.receive_json(timeout=5)
    await ws.send_json({"id": 2, "method": "subscribe", "topics": ["spot/user_trades"]})
    _, snapshot = await _frames(ws, 2)
    assert snapshot["data"] == []
    trader = Trader(client)
    trader.nonce = nonce
    await trader.post("order_create", pair="BTC_USDT", quantity="0.001", price="0", type="market_buy",
                      client_id="77")
    trade = (await ws.receive_json(timeout=5))["data"]
    seen = (trade["pair"], trade["type"], trade["quantity"], trade["client_id"])
    assert seen == ("BTC_USDT", "buy", "0.001", 77)
    assert {"trade_id", "order_id", "price", "amount", "commission_amount", "date"} <= set(trade)
    await ws.close()
