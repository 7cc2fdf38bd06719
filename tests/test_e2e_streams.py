"""WebSocket streams through the daemon, against the simulator's WebSocket API (SPEC §5b, issue 12).

Raw clients (the `websockets` package, Node's npm `ws`) and ccxt.pro with placeholder keys connect to
the daemon; the daemon logs in upstream with the real key. Every frame a client received and every log
is searched for the secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Stack, cli, curl_json, free_port

pytestmark = pytest.mark.slow
JUNK_LOGIN = {"id": 42, "method": "login", "api_key": "placeholder-key", "sign": "anything", "nonce": 1}


def ws_url(stack: Stack, path: str = "/v1/private") -> str:
    return stack.base.replace("http://", "ws://") + path


class Frames:
    """Every frame the tests' clients received, to search for the secret at the end."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def next(self, ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
        text = await asyncio.wait_for(ws.recv(), timeout)
        assert isinstance(text, str)
        self.seen.append(text)
        frame = json.loads(text)
        assert isinstance(frame, dict)
        return frame

    async def until(self, ws: ClientConnection, match: Callable[[dict[str, Any]], bool],
                    timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next(ws, max(0.1, deadline - time.monotonic()))
            if match(frame):
                return frame


@asynccontextmanager
async def private_stream(stack: Stack, frames: Frames, **options: Any) -> AsyncIterator[ClientConnection]:
    """A private stream logged in with junk, as ccxt.pro would with placeholder keys."""
    async with connect(ws_url(stack), **options) as ws:
        greeting = await frames.next(ws)
        assert (greeting["event"], greeting["code"]) == ("info", 1)
        await ws.send(json.dumps(JUNK_LOGIN))
        assert await frames.next(ws) == {"ts": pytest.approx(time.time() * 1000, abs=60_000),
                                         "event": "logged_in", "id": 42}
        yield ws


def _order(stack: Stack, price: str = "50000") -> dict[str, Any]:
    status, body = curl_json(f"{stack.base}/v1.1/order_create", "-d", "pair=BTC_USDT", "-d", "quantity=0.001",
                             "-d", f"price={price}", "-d", "type=buy")
    assert status == 200 and body["result"] is True, body
    return body  # type: ignore[no-any-return]


def _audit(stack: Stack) -> list[dict[str, Any]]:
    path = stack.tmp / "exmo-proxy-state" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_no_secret(stack: Stack, frames: Frames) -> None:
    secret_parts = (stack.secret, stack.secret[2:], stack.secret[2:22])
    texts = [*frames.seen, stack.logs(), (stack.tmp / "exmo-proxy-state" / "audit.jsonl").read_text()]
    for text in texts:
        for part in secret_parts:
            assert part not in text


def test_a_junk_login_is_answered_and_the_simulator_saw_the_real_key(make_stack) -> None:  # type: ignore[no-untyped-def]
    """A raw client logs in with junk and gets `logged_in` with its own id; EXMO (the simulator) saw one
    login with the account's real key; subscriptions and REST activity stream through unchanged."""
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        async with private_stream(stack, frames) as ws:
            topics = ["spot/wallet", "spot/orders"]
            await ws.send(json.dumps({"id": 2, "method": "subscribe", "topics": topics}))
            acks = [await frames.next(ws) for _ in range(4)]
            assert [(f["event"], f["topic"]) for f in acks] == [
                ("subscribed", "spot/wallet"), ("snapshot", "spot/wallet"),
                ("subscribed", "spot/orders"), ("snapshot", "spot/orders")]
            await asyncio.wait_for(await ws.ping(), 5)  # the daemon answers a client's ping (ccxt sends them)
            order = _order(stack)  # over REST, through the daemon
            update = await frames.until(ws, lambda f: f.get("topic") == "spot/orders")
            assert update["event"] == "update" and update["data"]["order_id"] == str(order["order_id"])
            wallet = await frames.until(ws, lambda f: f.get("topic") == "spot/wallet")
            assert wallet["data"]["currency"] in ("USDT", "BTC")

    asyncio.run(go())
    assert stack.sim_stats()["ws"]["logins"] == {stack.key: 1}
    deadline = time.monotonic() + 5
    while not any(e["method"] == "ws/close" for e in _audit(stack)):
        assert time.monotonic() < deadline, "no ws/close audit entry"
        time.sleep(0.05)
    login, close = (e for e in _audit(stack) if e["method"].startswith("ws/"))
    assert (login["method"], login["outcome"], login["account"]) == ("ws/login", "logged_in", "main")
    assert login["nonce"] == close["nonce"] and isinstance(login["nonce"], int)
    assert close["params"]["why"] == "client" and int(close["params"]["frames_to_client"]) >= 7
    _assert_no_secret(stack, frames)


def test_the_login_nonce_comes_from_the_key_s_rest_sequence(make_stack) -> None:  # type: ignore[no-untyped-def]
    """REST calls and stream logins on one key draw from one strictly increasing sequence."""
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        for _ in range(3):
            _order(stack)
            async with private_stream(stack, frames):
                pass
        _order(stack)

    asyncio.run(go())
    nonces = [e["nonce"] for e in _audit(stack) if e["method"] != "ws/close"]
    assert len(nonces) == 7 and nonces == sorted(nonces) and len(set(nonces)) == 7
    assert stack.sim_stats()["errors"].get("40009", 0) == 0


def test_browser_origin_and_foreign_host_are_refused_before_any_upstream_socket(make_stack) -> None:  # type: ignore[no-untyped-def]
    """Cross-site WebSocket hijacking: an Origin (or a foreign Host) gets 403 at the upgrade, and no
    socket to EXMO is opened."""
    stack: Stack = make_stack()

    async def go() -> None:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(stack), additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 403
            assert json.loads(refused.value.response.body)["proxy_error"] == "browser_refused"

    asyncio.run(go())
    upgrade = ["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
               "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    status, body = curl_json(f"{stack.base}/v1/private", "-H", "Host: evil.example", *upgrade)
    assert status == 403 and "evil.example" in body["error"]
    assert stack.sim_stats()["ws"]["opened"] == 0


def test_a_plain_get_on_a_stream_path_says_to_use_a_websocket(stack: Stack) -> None:
    status, body = curl_json(f"{stack.base}/v1/private")
    assert (status, body["proxy_error"]) == (426, "websocket_required")


def test_maintenance_closes_the_client_with_a_reason_and_a_new_stream_works(make_stack) -> None:  # type: ignore[no-untyped-def]
    """EXMO's maintenance drop: the client gets EXMO's notice, then a close (1012) that says so; the next
    stream logs in again and works."""
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        async with private_stream(stack, frames) as ws:
            status, _ = curl_json(f"{stack.sim.url}/_sim/ws/maintenance", "-X", "POST")
            assert status == 200
            notice = await frames.next(ws)
            assert (notice["event"], notice["code"]) == ("info", 2)
            with pytest.raises(ConnectionClosed) as closed:
                await frames.next(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            assert "maintenance" in closed.value.rcvd.reason and "reconnect" in closed.value.rcvd.reason
        async with private_stream(stack, frames) as ws:
            await ws.send(json.dumps({"id": 3, "method": "subscribe", "topics": ["spot/wallet"]}))
            assert (await frames.next(ws))["event"] == "subscribed"

    asyncio.run(go())
    assert stack.sim_stats()["ws"]["logins"] == {stack.key: 2}
    closes = [e["params"] for e in _audit(stack) if e["method"] == "ws/close"]
    assert {"why": "maintenance", "code": "1012"}.items() <= closes[0].items()  # the code the client got


def test_a_refused_upstream_login_closes_the_client_with_exmo_s_reason(make_stack) -> None:  # type: ignore[no-untyped-def]
    """An account whose key EXMO does not know: the client's socket is closed (1011) with EXMO's reason,
    never an `error` frame it did not cause; the audit says refused."""
    stack: Stack = make_stack()
    cli("account", "add", "stranger", "--config", str(stack.config), "--from-stdin", "--passphrase-file",
        str(stack.passphrase_file), stdin=f"K-{'ab' * 20}\nS-{'cd' * 20}\n")
    stack.restart_daemon()
    frames = Frames()

    async def go() -> None:
        async with connect(ws_url(stack, "/accounts/stranger/v1/private")) as ws:
            assert (await frames.next(ws))["event"] == "info"  # EXMO's greeting comes through
            with pytest.raises(ConnectionClosed) as closed:
                await frames.next(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
            assert "refused the login of account stranger" in closed.value.rcvd.reason

    asyncio.run(go())
    refused = [e for e in _audit(stack) if e["method"] == "ws/login"]
    assert [(e["account"], e["outcome"]) for e in refused] == [("stranger", "refused")]
    assert refused[0]["exmo_error_code"] == "40017"
    deadline = time.monotonic() + 5
    while not any(e["method"] == "ws/close" for e in _audit(stack)):
        assert time.monotonic() < deadline, "no ws/close audit entry"
        time.sleep(0.05)
    (close,) = (e for e in _audit(stack) if e["method"] == "ws/close")
    assert (close["params"]["why"], close["params"]["code"]) == ("login_failed", "1011")


def test_an_unreachable_exmo_closes_the_client_with_try_again(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text().replace(
        f"ws_upstream: ws://127.0.0.1:{stack.sim.port}", f"ws_upstream: ws://127.0.0.1:{free_port()}"))
    stack.restart_daemon()

    async def go() -> None:
        async with connect(ws_url(stack, "/v1/public")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert "unreachable" in closed.value.rcvd.reason

    asyncio.run(go())


def test_sigterm_closes_streams_with_1001(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        async with private_stream(stack, frames) as ws:
            os.kill(stack.daemon.proc.pid, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                await frames.next(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert "shutting down" in closed.value.rcvd.reason

    started = time.monotonic()
    asyncio.run(go())
    assert stack.daemon.proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 10  # not the whole shutdown grace


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_does_not_read_is_cut_off_and_memory_does_not_grow(make_stack) -> None:  # type: ignore[no-untyped-def]
    """EXMO floods a topic (100 MB) at a client that stops reading: the daemon cuts it off after
    streams.send_timeout_s, its memory stays flat, and a reading client on another stream is unharmed."""
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text() + "streams: {send_timeout_s: 1}\n")
    stack.restart_daemon()
    topic = "spot/ticker:BTC_USDT"
    frames = Frames()

    async def go() -> float:
        async with connect(ws_url(stack, "/v1/public"), max_queue=1) as stalled, \
                connect(ws_url(stack, "/v1/public")) as healthy:
            for ws in (stalled, healthy):
                await frames.next(ws)
                await ws.send(json.dumps({"id": 1, "method": "subscribe", "topics": [topic]}))
                await frames.next(ws)
                await frames.next(ws)
            await healthy.send(json.dumps({"method": "unsubscribe", "topics": [topic]}))
            await frames.until(healthy, lambda f: f["event"] == "unsubscribed")
            before = _rss_mib(stack.daemon.proc.pid)
            status, sent = curl_json(f"{stack.sim.url}/_sim/ws/flood?topic={topic}&frames=10000&bytes=10000",
                                     "-X", "POST")
            assert status == 200 and sent["sockets"] == 1
            grown = 0.0
            deadline = time.monotonic() + 20
            while "did not read" not in stack.logs():
                assert time.monotonic() < deadline, "the stalled client was not cut off"
                grown = max(grown, _rss_mib(stack.daemon.proc.pid) - before)
                await asyncio.sleep(0.1)
            other = {"id": 9, "method": "subscribe", "topics": ["spot/ticker:ETH_USDT"]}
            await healthy.send(json.dumps(other))
            assert (await frames.until(healthy, lambda f: f.get("id") == 9))["event"] == "subscribed"
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(stalled.recv(), 10)
            return grown

    grown = asyncio.run(go())
    assert grown < 16, f"the daemon grew by {grown:.1f} MiB while a client did not read"
    metrics = subprocess.run(["curl", "-s", f"{stack.base}/metrics"], capture_output=True, text=True,
                             check=True).stdout
    assert 'exmo_proxy_stream_closes_total{why="slow_client"} 1.0' in metrics


def test_tokens_scopes_and_caps_apply_at_the_upgrade(make_stack) -> None:  # type: ignore[no-untyped-def]
    """With clients configured: no token 401; a client without the account, or with streams: false, 403
    on private paths; past max_per_client 429. Public streams need a token only."""
    stack: Stack = make_stack()
    tokens = {}
    for name in ("bot", "reader"):
        added = cli("client", "add", name, "--account", "main", "--config", str(stack.config))
        assert added.returncode == 0, added.stderr
        tokens[name] = added.stdout.split()[-1]
    text = stack.config.read_text()
    reader_at = text.index("  reader:")
    line_end = text.index("\n", text.index("token_sha256", reader_at))
    text = text[:line_end] + "\n    streams: false" + text[line_end:]
    stack.config.write_text(text + "streams: {max_per_client: 2}\n")
    stack.restart_daemon()
    frames = Frames()

    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    async def refused(path: str, headers: dict[str, str]) -> tuple[int, str]:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(stack, path), additional_headers=headers):
                pass
        return info.value.response.status_code, json.loads(info.value.response.body)["proxy_error"]

    async def go() -> None:
        assert await refused("/v1/private", {}) == (401, "unauthorized")
        assert await refused("/v1/private", bearer("reader")) == (403, "client_streams")
        async with connect(ws_url(stack, "/v1/public"), additional_headers=bearer("reader")) as ws:
            assert (await frames.next(ws))["event"] == "info"
        async with private_stream(stack, frames, additional_headers=bearer("bot")), \
                private_stream(stack, frames, additional_headers=bearer("bot")):
            assert await refused("/v1/private", bearer("bot")) == (429, "too_many_streams")

    asyncio.run(go())
    _assert_no_secret(stack, frames)


def test_stream_metrics(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> str:
        async with private_stream(stack, frames):
            return subprocess.run(["curl", "-s", f"{stack.base}/metrics"], capture_output=True, text=True,
                                  check=True).stdout

    during = asyncio.run(go())
    assert 'exmo_proxy_streams_open{kind="private"} 1.0' in during
    assert 'exmo_proxy_stream_logins_total{outcome="logged_in"} 1.0' in during
    assert 'exmo_proxy_stream_frames_total{direction="to_client"}' in during


WS_VERSION = "8.23.0"
WS_INTEGRITY = ("sha512-wCkmX8QMOrKjgO8HW2WyDbTSGeqkocxgDzS9iR79rEAexty6/2qzilx3Ag8Tqf9ykop3irLKle0M"
                "tVn5qjVnoQ==")  # npm view ws@8.23.0 dist.integrity


@pytest.fixture(scope="session")
def node_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """npm's `ws` package for the Node client, fetched from the npm registry and checked against its
    published integrity (Debian's nodejs comes without npm; ws has no dependencies)."""
    import base64
    import hashlib
    import io
    import shutil
    import tarfile
    import urllib.request

    if shutil.which("node") is None:
        pytest.skip("needs node (apt-get install nodejs)")
    url = f"https://registry.npmjs.org/ws/-/ws-{WS_VERSION}.tgz"
    with urllib.request.urlopen(url, timeout=60) as answer:
        data = answer.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert digest == WS_INTEGRITY, "the ws tarball does not match its published integrity"
    modules = tmp_path_factory.mktemp("node") / "node_modules"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(modules / "ws-unpacked", filter="data")
    (modules / "ws-unpacked" / "package").rename(modules / "ws")
    yield modules


def test_a_node_ws_client_streams_through_the_daemon(make_stack, node_ws: Path) -> None:  # type: ignore[no-untyped-def]
    """Node.js with npm's `ws`: greeting, a junk login answered, a wallet snapshot."""
    stack: Stack = make_stack()
    script = Path(__file__).parent / "clients" / "stream.cjs"
    result = subprocess.run(["node", str(script), ws_url(stack)], capture_output=True, text=True, timeout=60,
                            check=False, env={**os.environ, "NODE_PATH": str(node_ws)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["logged_in_id"] == 5 and summary["greeting"] == "info"
    assert "USDT" in summary["balances"]
    assert stack.secret not in result.stdout


def test_ccxt_pro_with_placeholder_keys_watches_balance_orders_and_ticker(make_stack) -> None:  # type: ignore[no-untyped-def]
    """ccxt.pro 4.5.73 with placeholder credentials, REST and WebSocket both pointed at the daemon:
    watch_balance, watch_orders seeing an order placed over REST, watch_ticker."""
    import ccxt.pro as ccxtpro

    stack: Stack = make_stack()

    async def go() -> None:
        exchange = ccxtpro.exmo({"apiKey": "placeholder-key", "secret": "placeholder-secret"})
        exchange.urls["api"] = {**exchange.urls["api"], "public": stack.base, "private": stack.base,
                                "ws": {"public": ws_url(stack, "/v1/public"), "spot": ws_url(stack),
                                       "margin": ws_url(stack, "/v1/margin/private")}}
        try:
            balance = await asyncio.wait_for(exchange.watch_balance(), 20)
            assert balance["USDT"]["free"] > 0
            watching = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
            await asyncio.sleep(0.5)  # subscribed (the snapshot came) before the order is placed
            placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 50000)
            orders = await asyncio.wait_for(watching, 20)
            assert placed["id"] in [order["id"] for order in orders]
            ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USDT"), 20)
            assert ticker["bid"] and ticker["ask"] and ticker["bid"] < ticker["ask"]
        finally:
            await exchange.close()

    asyncio.run(go())
    assert stack.sim_stats()["ws"]["logins"] == {stack.key: 1}
    assert stack.secret not in stack.logs()


def test_more_streams_than_an_http_pool_holds(make_stack) -> None:  # type: ignore[no-untyped-def]
    """120 streams open at once (aiohttp's connection pool alone would stop at 100): all are greeted."""
    stack: Stack = make_stack()

    async def go() -> None:
        opened = [await connect(ws_url(stack, "/v1/public")) for _ in range(120)]
        try:
            greetings = await asyncio.gather(*(asyncio.wait_for(ws.recv(), 10) for ws in opened))
            assert all('"connection established"' in str(text) for text in greetings)
        finally:
            await asyncio.gather(*(ws.close() for ws in opened))

    asyncio.run(go())
    assert stack.sim_stats()["ws"]["opened"] == 120


def test_a_client_that_does_not_read_does_not_hold_up_shutdown(make_stack) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM while a client has left megabytes unread: its close frame cannot get through, so the
    stream is dropped after a few seconds and the daemon exits, not after its whole shutdown grace."""
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text() + "streams: {send_timeout_s: 600}\n")
    stack.restart_daemon()
    topic = "spot/ticker:BTC_USDT"
    frames = Frames()

    async def go() -> float:
        async with connect(ws_url(stack, "/v1/public"), max_queue=1) as stalled:
            await frames.next(stalled)
            await stalled.send(json.dumps({"id": 1, "method": "subscribe", "topics": [topic]}))
            await frames.next(stalled)
            await frames.next(stalled)
            curl_json(f"{stack.sim.url}/_sim/ws/flood?topic={topic}&frames=2000&bytes=10000", "-X", "POST")
            await asyncio.sleep(1.0)  # the socket buffers between the daemon and the client fill up
            started = time.monotonic()
            os.kill(stack.daemon.proc.pid, signal.SIGTERM)
            await asyncio.to_thread(stack.daemon.proc.wait, 30)
            return time.monotonic() - started

    took = asyncio.run(go())
    assert stack.daemon.proc.returncode == 0
    assert took < 12, f"shutdown waited {took:.1f}s for a client that does not read"


def test_the_halt_switch_does_not_cut_streams(make_stack) -> None:  # type: ignore[no-untyped-def]
    """`exmo-proxy halt on` refuses trading calls; streams (reads) go on, and new ones open."""
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        async with private_stream(stack, frames) as ws:
            halted = cli("halt", "on", "--config", str(stack.config), "--reason", "test")
            assert halted.returncode == 0, halted.stderr
            status, body = curl_json(f"{stack.base}/v1.1/order_create", "-d", "pair=BTC_USDT", "-d",
                                     "quantity=0.001", "-d", "price=50000", "-d", "type=buy")
            assert (status, body["proxy_error"]) == (403, "halted")
            await ws.send(json.dumps({"id": 2, "method": "subscribe", "topics": ["spot/wallet"]}))
            assert (await frames.next(ws))["event"] == "subscribed"
        async with private_stream(stack, frames):
            pass

    asyncio.run(go())


def test_a_reloaded_ws_upstream_applies_to_new_streams(make_stack) -> None:  # type: ignore[no-untyped-def]
    """SIGHUP with another ws_upstream: an open stream keeps its socket, a new one goes to the new URL."""
    stack: Stack = make_stack()
    frames = Frames()

    async def go() -> None:
        async with private_stream(stack, frames) as ws:
            stack.config.write_text(stack.config.read_text().replace(
                f"ws_upstream: ws://127.0.0.1:{stack.sim.port}", f"ws_upstream: ws://127.0.0.1:{free_port()}"))
            os.kill(stack.daemon.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "config reloaded" not in stack.logs():
                assert time.monotonic() < deadline, "no reload logged"
                await asyncio.sleep(0.05)
            await ws.send(json.dumps({"id": 2, "method": "subscribe", "topics": ["spot/wallet"]}))
            assert (await frames.next(ws))["event"] == "subscribed"
            async with connect(ws_url(stack, "/v1/public")) as fresh:
                with pytest.raises(ConnectionClosed) as closed:
                    await fresh.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

    asyncio.run(go())
