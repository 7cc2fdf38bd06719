"""Paper trading (SPEC §11, issue 14), end to end: the simulator plays live EXMO; the daemon runs with
`--paper`; ccxt with placeholder keys trades as it would for real. The simulator must see no private
call at all, and the paper ledger must survive a restart and a kill -9 right after a fill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Stack, cli, curl_json, start_daemon
from tests.test_e2e_metrics import samples, value
from tests.test_e2e_streams import JUNK_LOGIN, Frames, ws_url

pytestmark = pytest.mark.slow


@pytest.fixture
def paper(make_stack: Callable[..., Stack]) -> Iterator[Stack]:
    stack = make_stack()
    stack.daemon.stop()
    stack.daemon = start_daemon(stack, "--paper")
    yield stack


def _ccxt(stack: Stack) -> ccxt.exmo:
    client = ccxt.exmo({"apiKey": "placeholder-key", "secret": "placeholder-secret"})
    client.urls["api"] = {**client.urls["api"], "public": stack.base, "private": stack.base}
    return client


def _move(stack: Stack, pair: str, price: str) -> None:
    status, _ = curl_json(f"{stack.sim.url}/_sim/market?pair={pair}&price={price}", "-X", "POST")
    assert status == 200


def _eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _no_private_call_reached_the_exchange(stack: Stack) -> None:
    stats = stack.sim_stats()
    assert stats["executed"] == {} and stats["last_nonce"] == {}, stats


def test_a_ccxt_bot_paper_trades_on_live_prices(paper: Stack) -> None:
    bot = _ccxt(paper)
    balance = bot.fetch_balance()
    assert (balance["free"]["USDT"], balance["free"]["USD"]) == (10000, 10000)

    bot.create_order("BTC/USDT", "market", "buy", 0.01)  # the simulator's ask is 60030
    (taken,) = bot.fetch_my_trades("BTC/USDT")
    assert (taken["price"], taken["amount"], taken["takerOrMaker"]) == (60030, 0.01, "taker")
    assert taken["fee"]["cost"] == pytest.approx(0.00004)  # 0.4 % of the BTC bought

    resting = bot.create_order("BTC/USDT", "limit", "buy", 0.01, 59000)
    assert [o["id"] for o in bot.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert bot.fetch_balance()["used"]["USDT"] == 590
    _move(paper, "BTC_USDT", "58900")  # the live ask drops to 58929.45: the order is crossed
    assert _eventually(lambda: bot.fetch_open_orders("BTC/USDT") == []), "the resting order did not fill"
    maker = [t for t in bot.fetch_my_trades("BTC/USDT") if t["order"] == resting["id"]]
    assert [(t["price"], t["takerOrMaker"]) for t in maker] == [(59000, "maker")]

    cancelled = bot.create_order("BTC/USDT", "limit", "buy", 0.02, 50000)
    bot.cancel_order(cancelled["id"], "BTC/USDT")
    after = bot.fetch_balance()
    assert after["used"]["USDT"] == 0
    assert after["free"]["USDT"] == pytest.approx(10000 - 600.3 - 590)
    assert after["free"]["BTC"] == pytest.approx(0.02 - 0.00004 - 0.00004)

    with pytest.raises(ccxt.InsufficientFunds):  # EXMO's own answer, from the paper ledger
        bot.create_order("BTC/USDT", "limit", "buy", 1, 59000)
    _no_private_call_reached_the_exchange(paper)

    entries = [json.loads(line) for line in cli("audit", "tail", "-n", "50", "--json", "--config",
                                                   str(paper.config)).stdout.splitlines()]
    creates = [e for e in entries if e["method"] == "order_create"]
    assert creates and all(e.get("paper") is True and e["nonce"] is None for e in creates)
    counted = samples(paper)
    assert value(counted, "exmo_proxy_paper_calls_total", method="order_create") == len(creates)


def test_the_paper_ledger_survives_a_restart_and_a_kill_9(paper: Stack) -> None:
    bot = _ccxt(paper)
    bot.create_order("ETH/USDT", "market", "buy", 1)
    resting = bot.create_order("ETH/USDT", "limit", "sell", 0.5, 3100)
    kept = (bot.fetch_balance()["total"], bot.fetch_my_trades("ETH/USDT"), bot.fetch_open_orders())
    paper.daemon.stop()
    paper.daemon = start_daemon(paper, "--paper")
    assert (bot.fetch_balance()["total"], bot.fetch_my_trades("ETH/USDT"), bot.fetch_open_orders()) == kept

    bot.create_order("ETH/USDT", "market", "sell", 0.25)  # answered: on disk before the answer left
    paper.daemon.kill9()
    paper.daemon = start_daemon(paper, "--paper")
    trades = bot.fetch_my_trades("ETH/USDT")
    assert len(trades) == len(kept[1]) + 1 and trades[-1]["side"] == "sell"
    assert [o["id"] for o in bot.fetch_open_orders()] == [resting["id"]]  # still watched after restarts
    _move(paper, "ETH_USDT", "3150")  # the bid rises to 3148.42 ≥ 3100
    assert _eventually(lambda: bot.fetch_open_orders() == [])
    _no_private_call_reached_the_exchange(paper)


def test_what_paper_cannot_do_is_refused_clearly(paper: Stack) -> None:
    status, body = curl_json(f"{paper.base}/v1.1/deposit_address", "-X", "POST")
    assert (status, body["proxy_error"]) == (501, "not_in_paper_mode"), body
    assert "paper" in body["error"]
    status, body = curl_json(f"{paper.base}/v1.1/withdraw_crypt", "-d", "amount=1", "-d", "currency=BTC",
                             "-d", "address=x")
    assert status == 403  # the policy refuses money out first, paper or not
    status, body = curl_json(f"{paper.base}/v1.1/stop_market_order_create", "-d", "pair=BTC_USDT",
                             "-d", "quantity=0.01", "-d", "trigger_price=70000", "-d", "type=buy")
    assert (status, body["proxy_error"]) == (501, "not_in_paper_mode"), body
    status, body = curl_json(f"{paper.base}/v1.1/order_create", "-d", "pair=NOPE_USDT", "-d", "quantity=1",
                             "-d", "price=1", "-d", "type=buy")
    assert status == 200 and body["result"] is False and "50013" in body["error"]  # EXMO's text
    _no_private_call_reached_the_exchange(paper)


def test_paper_show_and_reset(paper: Stack) -> None:
    """`paper show` reads the ledger beside the running daemon; `paper reset` waits for it to stop."""
    bot = _ccxt(paper)
    bot.create_order("BTC/USDT", "market", "buy", 0.01)
    order = bot.create_order("BTC/USDT", "limit", "buy", 0.01, 55000)
    common = ["--config", str(paper.config)]
    shown = cli("paper", "show", *common)
    assert shown.returncode == 0, shown.stderr
    assert "paper account main:" in shown.stdout
    assert f"open: {order['id']} buy 0.01 BTC_USDT at 55000" in shown.stdout
    assert "reserved by open orders: USDT 550" in shown.stdout
    as_json = json.loads(cli("paper", "show", "--json", *common).stdout)
    assert as_json["main"]["trades"] == 1 and as_json["main"]["fees"] == {"BTC": "0.00004"}
    refused = cli("paper", "reset", *common)
    assert refused.returncode == 2 and "stop it first" in refused.stderr
    paper.daemon.stop()
    assert cli("paper", "reset", "main", *common).returncode == 0
    assert "no paper accounts" in cli("paper", "show", *common).stdout
    paper.daemon = start_daemon(paper, "--paper")
    assert bot.fetch_balance()["free"]["USDT"] == 10000 and bot.fetch_open_orders() == []


def test_a_paper_accounts_private_stream_comes_from_the_ledger(paper: Stack) -> None:
    """EXMO's private WebSocket protocol for a paper account, served by the daemon: the junk login is
    answered, spot/orders, spot/wallet and spot/user_trades start with snapshots and follow the paper
    ledger (an order placed over REST, then filled when the market moves through it); the simulator
    sees no socket login and no private call."""
    frames = Frames()

    async def go() -> list[dict[str, Any]]:
        async with connect(ws_url(paper)) as ws:
            assert (await frames.next(ws))["event"] == "info"
            await ws.send(json.dumps(JUNK_LOGIN))
            logged_in = await frames.next(ws)
            assert (logged_in["event"], logged_in["id"]) == ("logged_in", 42)
            await ws.send(json.dumps({"id": 2, "method": "subscribe",
                                      "topics": ["spot/orders", "spot/wallet", "spot/user_trades",
                                                 "spot/ticker:BTC_USDT"]}))
            wallet = await frames.until(ws, lambda f: f.get("event") == "snapshot"
                                        and f["topic"] == "spot/wallet")
            assert wallet["data"]["balances"]["USDT"] == "10000"
            refused = await frames.until(ws, lambda f: f.get("event") == "error")
            assert "spot/ticker:BTC_USDT" in refused["message"]
            bot = _ccxt(paper)
            order = await asyncio.to_thread(bot.create_order, "BTC/USDT", "limit", "buy", 0.01, 59000)
            opened = await frames.until(ws, lambda f: f.get("topic") == "spot/orders"
                                        and f.get("event") == "update")
            assert (opened["data"]["order_id"], opened["data"]["status"]) == (order["id"], "open")
            _move(paper, "BTC_USDT", "58900")
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < 2:  # the fill's updates: the order executed, the trade (in one push)
                frame = await frames.until(ws, lambda f: f.get("event") == "update", timeout=15)
                if frame["topic"] == "spot/user_trades" or frame["data"].get("status") == "executed":
                    seen[frame["topic"]] = frame["data"]
            return [seen["spot/user_trades"], seen["spot/orders"]]

    trade, done = asyncio.run(go())
    assert (trade["price"], trade["exec_type"]) == ("59000", "maker")
    assert trade["order_id"] == int(done["order_id"])
    _no_private_call_reached_the_exchange(paper)
    assert paper.sim_stats()["ws"]["logins"] == {}


def test_what_a_paper_fill_took_from_the_live_book_is_not_taken_again(paper: Stack) -> None:
    """EXMO's book does not shrink for a paper fill: a level a resting order emptied stays empty to
    the paper account while EXMO shows it unchanged, and fills again only once it changes. A trade
    through the order's price fills it too, once."""
    bot = _ccxt(paper)
    order = bot.create_order("LTC/USDT", "limit", "buy", 1.5, 79)

    def left() -> list[str]:
        return [o["info"]["quantity"] for o in bot.fetch_open_orders("LTC/USDT")]

    time.sleep(1.1)  # a trade fills orders placed in an earlier second
    # the book's top: 0.5 at 78.9895 (the next level is above 79), and the move's trade: 0.5 at 78.95
    _move(paper, "LTC_USDT", "78.95")
    assert _eventually(lambda: left() == ["0.5"]), left()
    time.sleep(2 * 2.0 + 1)  # two more checks against the same, unchanged book and no new trade
    assert left() == ["0.5"]
    _move(paper, "LTC_USDT", "78.94")  # a different book: 0.5 at 78.9795, fresh liquidity
    assert _eventually(lambda: left() == [])
    fills = [t["amount"] for t in bot.fetch_my_trades("LTC/USDT") if t["order"] == order["id"]]
    assert fills == [0.5, 0.5, 0.5]


def test_a_trade_through_a_resting_orders_price_fills_it(paper: Stack) -> None:
    """EXMO's book may never cross a resting order while its trades go through the order's price:
    those trades fill it (the simulator's move to 58990 is a sale at 58990; its new ask stays above)."""
    bot = _ccxt(paper)
    order = bot.create_order("BTC/USDT", "limit", "buy", 0.01, 59000)
    time.sleep(1.1)
    _move(paper, "BTC_USDT", "58990")  # ask 59019.5: above 59000; the trade at 58990: below
    assert _eventually(lambda: bot.fetch_open_orders("BTC/USDT") == [])
    (fill,) = [t for t in bot.fetch_my_trades("BTC/USDT") if t["order"] == order["id"]]
    assert (fill["price"], fill["amount"], fill["takerOrMaker"]) == (59000, 0.01, "maker")


def test_paper_streams_count_toward_the_caps_and_close_on_drain(make_stack: Callable[..., Stack]) -> None:
    """A paper stream is the daemon's own, not relayed, but it counts toward streams.max_open like a
    relayed one, and SIGTERM closes it with 1001 at once."""
    stack = make_stack()
    stack.daemon.stop()
    stack.config.write_text(stack.config.read_text() + "streams: {max_open: 1}\n")
    stack.daemon = start_daemon(stack, "--paper")

    async def go() -> tuple[int | None, int | None]:
        async with connect(ws_url(stack)) as ws:
            await ws.recv()
            try:
                async with connect(ws_url(stack)):
                    second = None
            except InvalidStatus as refused:
                second = refused.response.status_code
            stack.daemon.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return second, ws.close_code

    assert asyncio.run(go()) == (429, 1001)
