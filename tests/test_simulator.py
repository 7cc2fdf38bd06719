"""The EXMO simulator: signatures, nonces, rate limits, error texts and the exchange model.

Requests are signed here with a few lines of hmac/hashlib, never with the proxy's own code,
and the helper is pinned to the known-answer vectors of exmo-api.md §1.3.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from proxy.simulator import (
    DEMO_KEY,
    DEMO_SECRET,
    SimulatorConfig,
    create_simulator_app,
    load_accounts_file,
    serve_simulator,
)

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]

KEY = "K-" + "1a" * 20
SECRET = "S-" + "2b" * 20
OTHER_KEY = "K-" + "3c" * 20
OTHER_SECRET = "S-" + "4d" * 20
VECTOR_SECRET = "secretsecret"  # ccxt's offline dummy secret, exmo-api.md §1.3
VECTORS = [
    pytest.param(
        "nonce=1700154924505",
        "3f0e7f570cea0439ec5d13a3e8aa38f72ca1e9b304e1bf896093127b1ee7c1d7"
        "634951fbb4f72dcb3a1986973e7452105c21701d71027faa5e6a3fe4de53f29a",
        id="user_info-body",
    ),
    pytest.param(
        "nonce=1701427482963&pair=LTC_USDT&quantity=0.1&price=50&type=buy",
        "a6257bea5de8e9d3e12f284afad1dd3da74c4b426fdbeeb30066638130c5a4bb"
        "8c87ac8a47db3e5dbf1050a9742cafc2f5ab4dd8b026cde9b5b0d9f5c473da22",
        id="order_create-body",
    ),
]
FORM = "application/x-www-form-urlencoded"


def sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha512).hexdigest()


def config(**overrides: Any) -> SimulatorConfig:
    base: dict[str, Any] = {"accounts": {KEY: SECRET, OTHER_KEY: OTHER_SECRET}, "rate_limit": 0}
    return SimulatorConfig(**{**base, **overrides})


async def raw_post(client: Client, path: str, body: str, headers: dict[str, str]) -> Any:
    resp = await client.post(path, data=body.encode(), headers={"Content-Type": FORM, **headers})
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    return await resp.json()


class Trader:
    """A signed EXMO client with its own increasing nonce."""

    def __init__(self, client: Client, key: str = KEY, secret: str = SECRET) -> None:
        self.client, self.key, self.secret, self.nonce = client, key, secret, 0

    def body(self, **params: Any) -> str:
        self.nonce += 1
        return urlencode({"nonce": self.nonce, **params})

    async def post(self, method: str, **params: Any) -> Any:
        body = self.body(**params)
        headers = {"Key": self.key, "Sign": sign(self.secret, body)}
        return await raw_post(self.client, f"/v1.1/{method}", body, headers)


async def stats(client: Client) -> Any:
    return await (await client.get("/_sim/stats")).json()


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    return await aiohttp_client(create_simulator_app(config()))


@pytest.fixture
def trader(client: Client) -> Trader:
    return Trader(client)


@pytest.mark.parametrize(("body", "expected"), VECTORS)
def test_sign_helper_matches_known_vectors(body: str, expected: str) -> None:
    """The test signer reproduces the exmo-api.md §1.3 vectors."""
    assert sign(VECTOR_SECRET, body) == expected


@pytest.mark.parametrize(("body", "expected"), VECTORS)
async def test_accepts_known_vector_and_rejects_flipped_sign(
    aiohttp_client: MakeClient, body: str, expected: str
) -> None:
    """A §1.3 vector signature is accepted; the same with one flipped character is 40005."""
    client = await aiohttp_client(create_simulator_app(config(accounts={"key": VECTOR_SECRET})))
    method = "order_create" if "pair" in body else "user_info"
    flipped = ("0" if expected[0] != "0" else "1") + expected[1:]
    bad = await raw_post(client, f"/v1.1/{method}", body, {"Key": "key", "Sign": flipped})
    assert bad == {"result": False, "error": "Error 40005: Authorization error, Incorrect signature"}
    good = await raw_post(client, f"/v1.1/{method}", body, {"Key": "key", "Sign": expected})
    assert "error" not in good or good["error"] == ""


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        pytest.param("/v1.1/user_info", {"Key": "K-nope"}, "Error 40017: Wrong api key", id="unknown-key"),
        pytest.param("/v1.1/user_info", {}, "Error 40017: Wrong api key", id="missing-key"),
        pytest.param("/v1.1/user_info", {"Key": KEY, "Sign": "00"},
                     "Error 40005: Authorization error, Incorrect signature", id="wrong-sign"),
        pytest.param("/v1.1/user_info?date=1", {"Key": KEY},
                     "Error 40038: GET parameters are forbidden in POST requests", id="query-on-post"),
        pytest.param("/v1.1/nope", {}, "Error 40015: API function do not exist - /v1.1/nope/",
                     id="unknown-method-v1.1"),
        pytest.param("/v1/nope/", {}, "Error 40015: API function do not exist - /v1/nope/",
                     id="unknown-method-v1"),
    ],
)
async def test_error_envelopes(client: Client, path: str, headers: dict[str, str], expected: str) -> None:
    """Each refusal is HTTP 200 JSON with EXMO's exact text (exmo-api.md §4.3)."""
    body = "nonce=1"
    if "Sign" in headers and headers["Sign"] != "00":
        headers = {**headers, "Sign": sign(SECRET, body)}
    assert await raw_post(client, path, body, headers) == {"result": False, "error": expected}


@pytest.mark.parametrize(
    ("body", "last"),
    [
        pytest.param("", "0", id="missing"),
        pytest.param("nonce=abc", "0", id="not-integer"),
        pytest.param("nonce=-5", "0", id="negative"),
    ],
)
async def test_bad_nonce_is_40009(client: Client, body: str, last: str) -> None:
    """A missing or non-integer nonce gets the 40009 text without an "Error " prefix."""
    answer = await raw_post(client, "/v1.1/user_info", body, {"Key": KEY, "Sign": sign(SECRET, body)})
    text = f'40009: The nonce parameter is less or equal than what was used before "{last}"'
    assert answer == {"result": False, "error": text}


async def test_nonce_must_strictly_increase(client: Client) -> None:
    """Equal or lower nonces are refused with the last accepted one; refusals change nothing."""
    async def call(nonce: int, secret: str = SECRET) -> Any:
        body = f"nonce={nonce}"
        return await raw_post(client, "/v1.1/user_info", body, {"Key": KEY, "Sign": sign(secret, body)})

    assert "uid" in await call(5)
    refused = '40009: The nonce parameter is less or equal than what was used before "5"'
    assert (await call(5))["error"] == refused
    assert (await call(4))["error"] == refused
    assert (await call(99, secret="S-wrong"))["error"].startswith("Error 40005")
    assert "uid" in await call(6)
    snapshot = await stats(client)
    assert snapshot["last_nonce"] == {KEY: 6}
    assert snapshot["errors"] == {"40009": 2, "40005": 1}
    assert snapshot["executed"] == {"user_info": 2}


async def test_nonces_are_per_key(client: Client) -> None:
    """Each API key has its own nonce counter (exmo-api.md §3)."""
    first, second = Trader(client), Trader(client, OTHER_KEY, OTHER_SECRET)
    first.nonce = 1000
    assert "uid" in await first.post("user_info")
    assert "uid" in await second.post("user_info")
    assert (await stats(client))["last_nonce"] == {KEY: 1001, OTHER_KEY: 1}


async def test_delay_reorders_concurrent_requests(aiohttp_client: MakeClient) -> None:
    """With a processing delay, increasing nonces sent together get processed out of order."""
    client = await aiohttp_client(create_simulator_app(config(delay_ms=300, seed=7)))
    trader = Trader(client)
    tasks = []
    for _ in range(10):
        tasks.append(asyncio.create_task(trader.post("user_info")))
        await asyncio.sleep(0.005)  # arrive in nonce order; the seeded delays shuffle them
    answers = await asyncio.gather(*tasks)
    refused = [a for a in answers if "error" in a]
    assert refused, "at least one request must be overtaken and refused"
    assert all(a["error"].startswith("40009: The nonce parameter") for a in refused)
    snapshot = await stats(client)
    assert snapshot["executed"]["user_info"] + snapshot["errors"]["40009"] == 10


async def test_rate_limit_per_ip_on_public_calls(aiohttp_client: MakeClient) -> None:
    """Past rate_limit calls in one second the answer is 40034, as HTTP 200."""
    client = await aiohttp_client(create_simulator_app(config(rate_limit=3)))
    answers = [await (await client.get("/v1.1/ticker")).json() for _ in range(4)]
    assert all("BTC_USDT" in a for a in answers[:3])
    assert answers[3] == {"result": False, "error": "Error 40034: Access is denied, rate limit is exceeded"}
    assert (await stats(client))["errors"] == {"40034": 1}


async def test_rate_limit_on_private_calls_keeps_nonce(aiohttp_client: MakeClient) -> None:
    """A rate-limited private call is refused before its nonce is looked at."""
    client = await aiohttp_client(create_simulator_app(config(rate_limit=2)))
    trader = Trader(client)
    answers = [await trader.post("user_info") for _ in range(3)]
    assert answers[2]["error"] == "Error 40034: Access is denied, rate limit is exceeded"
    assert (await stats(client))["last_nonce"] == {KEY: 2}


async def test_rate_limit_retry_after_style(aiohttp_client: MakeClient) -> None:
    """The alternative style answers EXMO's second text naming the client IP (exmo-api.md §5)."""
    client = await aiohttp_client(create_simulator_app(config(rate_limit=1, rate_limit_style="retry_after")))
    await client.get("/v1.1/ticker")
    answer = await (await client.get("/v1.1/ticker")).json()
    assert answer == {"result": False, "error": "API rate limit exceeded for 127.0.0.1. Retry after 60 sec."}


async def balances(trader: Trader) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    info = await trader.post("user_info")
    free = {k: Decimal(v) for k, v in info["balances"].items()}
    return free, {k: Decimal(v) for k, v in info["reserved"].items()}


async def test_resting_order_lifecycle(trader: Trader) -> None:
    """A limit buy below the ask rests with funds reserved; cancelling releases them."""
    created = await trader.post("order_create", pair="BTC_USDT", quantity="0.01", price="50000", type="buy")
    assert created["result"] is True and created["error"] == "" and created["client_id"] == 0
    order_id = created["order_id"]
    open_orders = await trader.post("user_open_orders")
    assert open_orders["BTC_USDT"][0] == {
        "order_id": str(order_id), "client_id": "0", "created": open_orders["BTC_USDT"][0]["created"],
        "type": "buy", "pair": "BTC_USDT", "quantity": "0.01", "price": "50000", "amount": "500",
    }
    assert await trader.post("user_open_orders", pair="ETH_USDT") == {}
    free, reserved = await balances(trader)
    assert (free["USDT"], reserved["USDT"]) == (Decimal(99500), Decimal(500))
    assert await trader.post("order_cancel", order_id=order_id) == {"result": True, "error": ""}
    assert await trader.post("user_open_orders") == {}
    free, reserved = await balances(trader)
    assert (free["USDT"], reserved["USDT"]) == (Decimal(100000), Decimal(0))
    cancelled = await trader.post("user_cancelled_orders")
    assert [c["order_id"] for c in cancelled] == [str(order_id)]
    again = await trader.post("order_cancel", order_id=order_id)
    assert again == {"result": False, "error": f"Error 50173: Order with id {order_id} was not found."}


async def test_a_resting_order_fills_when_the_market_moves_through_it(trader: Trader) -> None:
    """`POST /_sim/market` moves a price (a test control): a resting buy the new book reaches fills
    as maker at its own price, partly while the book offers less than it holds; the book, ticker and
    trades follow the new price."""
    created = await trader.post("order_create", pair="BTC_USDT", quantity="0.8", price="50000", type="buy")
    order_id = str(created["order_id"])
    moved = await trader.client.post("/_sim/market?pair=BTC_USDT&price=49990")
    assert moved.status == 200 and (await moved.json())["price"] == "49990"
    # the ask is now 49990 x 1.0005 = 50014.995 → 50015: above 50000, nothing fills yet
    assert [o["order_id"] for o in (await trader.post("user_open_orders"))["BTC_USDT"]] == [order_id]
    await trader.client.post("/_sim/market?pair=BTC_USDT&price=49970")  # ask 49994.99: level 0.5
    left = (await trader.post("user_open_orders"))["BTC_USDT"][0]
    assert (left["quantity"], left["amount"]) == ("0.3", "15000")
    trade = (await trader.post("user_trades", pair="BTC_USDT"))["BTC_USDT"][0]
    assert (trade["price"], trade["quantity"], trade["exec_type"]) == ("50000", "0.5", "maker")
    await trader.client.post("/_sim/market?pair=BTC_USDT&price=49000")
    assert await trader.post("user_open_orders") == {}
    free, reserved = await balances(trader)
    assert (free["USDT"], reserved["USDT"]) == (Decimal(100000) - Decimal(40000), Decimal(0))
    assert free["BTC"] == Decimal(10) + Decimal("0.8") - Decimal("0.0032")  # 0.4 % of what it bought
    ticker = await (await trader.client.get("/v1.1/ticker")).json()
    assert ticker["BTC_USDT"]["last_trade"] == "49000"
    bad = await trader.client.post("/_sim/market?pair=NOPE&price=1")
    assert bad.status == 400


async def test_market_order_fills_and_shows_in_trades(trader: Trader) -> None:
    """A market buy fills at the ask, pays the taker commission and appears in user_trades."""
    created = await trader.post("order_create", pair="BTC_USDT", quantity="0.01", price="0",
                                type="market_buy", client_id="77")
    assert created["client_id"] == 77
    trades = (await trader.post("user_trades", pair="BTC_USDT"))["BTC_USDT"]
    assert len(trades) == 1
    trade = trades[0]
    assert (trade["order_id"], trade["type"], trade["price"], trade["quantity"]) == (
        created["order_id"], "buy", "60030", "0.01")
    free, _ = await balances(trader)
    assert free["USDT"] == Decimal(100000) - Decimal("600.3")
    assert free["BTC"] == Decimal(10) + Decimal("0.01") - Decimal(trade["commission_amount"])
    detail = await trader.post("order_trades", order_id=created["order_id"])
    assert (detail["in_currency"], detail["out_currency"], detail["out_amount"]) == ("BTC", "USDT", "600.3")


async def test_crossing_limit_sell_takes_the_bids(trader: Trader) -> None:
    """A limit sell below the bid takes the bid levels down to its price, best first, as taker
    (0.5 at the bid 2998.5, then 0.5 of the next level's 0.75 at 2997), and leaves nothing open."""
    await trader.post("order_create", pair="ETH_USDT", quantity="1", price="2000", type="sell")
    assert await trader.post("user_open_orders") == {}
    trades = (await trader.post("user_trades", pair="ETH_USDT"))["ETH_USDT"]
    assert [(t["price"], t["quantity"], t["exec_type"]) for t in trades] == [
        ("2997", "0.5", "taker"), ("2998.5", "0.5", "taker")]  # newest first


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"quantity": "1", "price": "1", "type": "buy"},
                     "Error 50013: Parameter 'pair' is not specified", id="missing-pair"),
        pytest.param({"pair": "BTC_USDT", "quantity": "x", "price": "1", "type": "buy"},
                     "Error 50049: Parameter is not a number 'quantity'", id="not-a-number"),
        pytest.param({"pair": "BTC_USDT", "quantity": "0.000001", "price": "50000", "type": "buy"},
                     "Error 50277: Quantity by order is less than permissible minimum for this pair",
                     id="below-min-quantity"),
        pytest.param({"pair": "BTC_USDT", "quantity": "0.01", "price": "0.001", "type": "buy"},
                     "Error 50319: Price by order is less than permissible minimum for this pair",
                     id="below-min-price"),
        pytest.param({"pair": "BTC_USDT", "quantity": "0.01", "price": "99999999", "type": "sell"},
                     "Error 50321: Price by order is more than permissible maximum for this pair",
                     id="above-max-price"),
        pytest.param({"pair": "BTC_USDT", "quantity": "0.01", "price": "50000.123", "type": "buy"},
                     "Error 50381: More than 2 decimal places are not permitted for pair BTC_USDT",
                     id="too-many-decimals"),
        pytest.param({"pair": "BTC_USDT", "quantity": "5", "price": "50000", "type": "buy"},
                     "Error 50052: Insufficient funds", id="insufficient-funds"),
        pytest.param({"pair": "BTC_USDT", "quantity": "11", "price": "0", "type": "market_sell"},
                     "Error 50052: Insufficient funds", id="insufficient-base"),
    ],
)
async def test_order_create_validation(trader: Trader, params: dict[str, str], error: str) -> None:
    """Invalid orders get EXMO's texts and change no balance."""
    assert await trader.post("order_create", **params) == {"result": False, "error": error}
    free, reserved = await balances(trader)
    assert free["USDT"] == Decimal(100000) and free["BTC"] == Decimal(10)
    assert sum(reserved.values()) == 0


async def test_withdraw_crypt_returns_task_id_and_debits(trader: Trader) -> None:
    """withdraw_crypt answers a task_id, lowers the balance and is listed in wallet history."""
    answer = await trader.post("withdraw_crypt", amount="1.5", currency="BTC", address="bc1-fake")
    assert answer["result"] is True and answer["error"] == "" and isinstance(answer["task_id"], int)
    free, _ = await balances(trader)
    assert free["BTC"] == Decimal("8.5")
    txid = await trader.post("withdraw_get_txid", task_id=answer["task_id"])
    assert txid["status"] is True and len(txid["txid"]) == 64
    history = (await trader.post("wallet_history"))["history"]
    assert [(h["type"], h["amount"]) for h in history] == [("withdrawal", "-1.5")]
    missing = await trader.post("withdraw_crypt", amount="1", currency="BTC")
    assert missing["error"] == "Error 50013: Parameter 'address' is not specified"


async def test_excode_moves_value_between_accounts(client: Client, trader: Trader) -> None:
    """An EX-CODE created by one account can be loaded once by another."""
    created = await trader.post("excode_create", currency="USDT", amount="10")
    other = Trader(client, OTHER_KEY, OTHER_SECRET)
    loaded = await other.post("excode_load", code=created["code"])
    assert (loaded["result"], loaded["amount"], loaded["currency"]) == (True, "10", "USDT")
    assert (await balances(other))[0]["USDT"] == Decimal(100010)
    assert (await other.post("excode_load", code=created["code"]))["result"] is False


async def test_margin_methods(trader: Trader) -> None:
    """margin/pair/list lists pairs; margin trading answers the 140434 margin error shape."""
    pairs = (await trader.post("margin/pair/list"))["pairs"]
    assert {"BTC_USDT", "ETH_USDT"} <= {p["name"] for p in pairs}
    assert await trader.post("margin/user/order/list") == {"orders": []}
    refused = await trader.post("margin/user/order/create", pair="BTC_USDT", quantity="1", type="market_buy")
    assert refused == {"error": {"code": "140434",
                                 "msg": "Your margin balance is not sufficient to place the order"}}


async def test_public_get_and_post(client: Client) -> None:
    """Public methods answer GET (query) and POST (form body); unknown pairs are absent."""
    ticker = await (await client.get("/v1.1/ticker")).json()
    assert set(ticker["BTC_USDT"]) >= {"buy_price", "sell_price", "last_trade", "vol", "updated"}
    book = await raw_post(client, "/v1.1/order_book", "pair=BTC_USDT,NOPE_USDC&limit=3", {})
    assert list(book) == ["BTC_USDT"] and len(book["BTC_USDT"]["ask"]) == 3
    assert await (await client.get("/v1/order_book/?pair=NOPE_USDC")).json() == {}
    missing = await (await client.get("/v1.1/trades")).json()
    assert missing == {"result": False, "error": "Error 50013: Parameter 'pair' is not specified"}
    settings = await (await client.get("/v1.1/pair_settings")).json()
    assert settings["BTC_USDT"]["price_precision"] == 2
    extended = await (await client.get("/v1.1/currency/list/extended")).json()
    assert {"name": "BTC", "description": "Bitcoin"} in extended


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("symbol=BTC_USDT&resolution=D", {"s": "error", "errmsg":
                     'strconv.ParseInt: parsing "": invalid syntax'}, id="no-range"),
        pytest.param("symbol=NOPE&resolution=60&from=0&to=7200", {"candles": []}, id="unknown-symbol"),
    ],
)
async def test_candles_history_shapes(client: Client, query: str, expected: Any) -> None:
    """candles_history has its own error shape (exmo-api.md §4.1)."""
    assert await (await client.get(f"/v1.1/candles_history?{query}")).json() == expected


async def test_candles_history_data(client: Client) -> None:
    """Candles carry t (ms), o, c, h, l, v and are deterministic."""
    url = "/v1.1/candles_history?symbol=BTC_USDT&resolution=60&from=3600&to=10800"
    first = await (await client.get(url)).json()
    assert [c["t"] for c in first["candles"]] == [3600000, 7200000, 10800000]
    assert first == await (await client.get(url)).json()


async def test_stats_count_client_ids(client: Client, trader: Trader) -> None:
    """/_sim/stats counts executed calls by client_id; refused calls are not counted."""
    order = {"pair": "BTC_USDT", "quantity": "0.01", "price": "50000", "type": "buy", "client_id": "42"}
    await trader.post("order_create", **order)
    await trader.post("order_create", **order)
    trader.nonce = 0
    await trader.post("order_create", **order)
    snapshot = await stats(client)
    assert snapshot["client_ids"] == {"42": 2}
    assert snapshot["executed"] == {"order_create": 2}
    assert snapshot["errors"] == {"40009": 1}


async def test_other_paths_are_404(client: Client) -> None:
    """Only /v1/, /v1.1/ and /_sim/ paths exist."""
    assert (await client.get("/v2/ticker")).status == 404
    assert (await client.get("/")).status == 404


def test_load_accounts_file(tmp_path: Path) -> None:
    """A YAML key: secret mapping loads as a dict."""
    path = tmp_path / "accounts.yaml"
    path.write_text(f"{KEY}: {SECRET}\n{OTHER_KEY}: {OTHER_SECRET}\n")
    assert load_accounts_file(str(path)) == {KEY: SECRET, OTHER_KEY: OTHER_SECRET}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{KEY}: [{SECRET}\n", id="bad-yaml"),
        pytest.param(f"- {SECRET}\n", id="not-a-mapping"),
        pytest.param(f"{KEY}: 12345\nx: {SECRET}\n", id="secret-not-string"),
        pytest.param("", id="empty"),
    ],
)
def test_load_accounts_file_errors_hide_secrets(tmp_path: Path, text: str) -> None:
    """A bad accounts file raises a one-line ValueError that never quotes a secret."""
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="accounts file") as info:
        load_accounts_file(str(path))
    assert SECRET not in str(info.value) and "\n" not in str(info.value)


def test_demo_credentials_look_like_exmo_ones() -> None:
    """The demo pair has EXMO's K-/S- + 40 hex format (exmo-api.md §1.2)."""
    for value, prefix in ((DEMO_KEY, "K-"), (DEMO_SECRET, "S-")):
        assert value.startswith(prefix) and len(value) == 42
        int(value[2:], 16)


async def test_serve_simulator_logs_and_stops(
    unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """serve_simulator listens, logs one line without secrets, and stops when cancelled."""
    port = unused_tcp_port
    caplog.set_level(logging.INFO, logger="proxy.simulator")
    task = asyncio.create_task(serve_simulator(config(), "127.0.0.1", port))
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(f"http://127.0.0.1:{port}/v1.1/currency") as resp:
                    assert "BTC" in await resp.json()
                    break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("simulator did not start")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert f"simulator listening on http://127.0.0.1:{port}" in caplog.text
    assert SECRET not in caplog.text


async def test_ccxt_reads_simulator_answers(client: Client) -> None:
    """ccxt's exmo parsers accept the simulator's shapes, errors included (real client check)."""
    import ccxt.async_support as ccxt_async

    base = str(client.make_url("")).rstrip("/")
    exchange = ccxt_async.exmo({"apiKey": KEY, "secret": SECRET})
    exchange.urls["api"] = {"public": base, "private": base, "web": base}
    try:
        markets = await exchange.load_markets()
        assert markets["BTC/USDT"]["limits"]["amount"]["min"] == 0.00001
        assert (await exchange.fetch_balance())["free"]["BTC"] == 10
        order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
        assert [o["id"] for o in await exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
        await exchange.cancel_order(order["id"], "BTC/USDT")
        await exchange.create_order("BTC/USDT", "market", "buy", 0.01)
        assert (await exchange.fetch_my_trades("BTC/USDT"))[0]["price"] == 60030
        with pytest.raises(ccxt_async.OrderNotFound):
            await exchange.cancel_order("123", "BTC/USDT")
        exchange.nonce = lambda: 1
        with pytest.raises(ccxt_async.InvalidNonce):
            await exchange.fetch_balance()
    finally:
        await exchange.close()
