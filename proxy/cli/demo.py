"""`exmo-proxy demo [--paper]`: the simulator and the daemon together, with a throwaway encrypted config
(`--paper`: the daemon paper-trades on the simulator's prices).

Everything lives in a temporary directory that is removed on exit; the API key pair is random and
only the simulator knows it. The curl lines and the WebSocket example printed at start work as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from pathlib import Path

from proxy import simulator
from proxy.config.addresses import Listen
from proxy.config.load import load_config
from proxy.config.template import new_config_text
from proxy.durable import create_exclusive
from proxy.ops.server import serve
from proxy.vault.passphrase import PassphraseSources
from proxy.vault.secret import Secret


def _stream_lines(base: str) -> list[str]:
    """A private WebSocket stream, as a bot without the secret opens it (aiohttp comes with the daemon)."""
    socket = base.replace("http://", "ws://", 1) + "/v1/private"
    return [
        "A private WebSocket stream: any login frame is answered, the proxy logs in with the real key.",
        "Leave it running, place an order with the curl line above, and watch spot/orders:",
        "",
        "python3 - <<'PY'",
        "import asyncio, aiohttp",
        "async def main():",
        f"    async with aiohttp.ClientSession() as s, s.ws_connect('{socket}') as ws:",
        "        await ws.send_json({'id': 1, 'method': 'login', 'api_key': '-', 'sign': '-', 'nonce': 1})",
        "        await ws.send_json({'id': 2, 'method': 'subscribe',",
        "                            'topics': ['spot/wallet', 'spot/orders', 'spot/ticker:BTC_USDT']})",
        "        async for frame in ws:",
        "            print(frame.data, flush=True)",
        "asyncio.run(main())",
        "PY",
        "",
    ]


def _paper_lines(sim: str) -> list[str]:
    return [
        "Paper mode: private calls never leave the proxy; prices are the exchange's (here the simulator,",
        "live EXMO with `exmo-proxy run --paper`). Move the simulator's market through a resting order",
        "and it fills within two seconds:",
        "",
        f"  curl -s -X POST '{sim}/_sim/market?pair=BTC_USDT&price=19900'",
        "  exmo-proxy paper show --config <your config>   # with your own daemon: balances, orders, fees",
        "",
    ]


def _curl_lines(base: str, sim: str, paper: bool) -> str:
    post = f"curl -s -X POST {base}/v1.1"
    what = "paper trading on its prices" if paper else "the signing proxy"
    return "\n".join([
        "",
        f"exmo-proxy demo: a simulated exchange (fake money) behind {what} at {base}",
        "Your bot sends plain requests; the proxy adds nonce, Key and Sign. Try:" if not paper else
        "Your bot sends plain requests; the proxy answers them from its paper ledger. Try:",
        "",
        f"  {post}/user_info",
        f"  {post}/order_create -d pair=BTC_USDT -d quantity=0.01 -d price=20000 -d type=buy",
        f"  {post}/user_open_orders",
        f"  {post}/order_cancel -d order_id=<order_id from order_create>",
        f"  {post}/order_create -H 'Content-Type: application/json' "
        "-d '{\"pair\":\"BTC_USDT\",\"quantity\":\"0.001\",\"price\":\"0\",\"type\":\"market_buy\"}'",
        f"  {post}/user_trades -d pair=BTC_USDT",
        f"  curl -s '{base}/v1.1/ticker'",
        f"  {post}/withdraw_crypt -d amount=1 -d currency=BTC -d address=x   # refused: money out is locked",
        "",
        *(_paper_lines(sim) if paper else _stream_lines(base)),
        "Press Ctrl-C to stop.",
        "",
    ])


async def _wait_listening(host: str, port: int, attempts: int = 100) -> None:
    for _ in range(attempts):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise OSError(f"the simulator did not start on {host}:{port}")


async def run_demo(listen: Listen, sim_listen: Listen, paper: bool = False) -> None:
    key, secret = "K-" + secrets.token_hex(20), Secret("S-" + secrets.token_hex(20))
    with tempfile.TemporaryDirectory(prefix="exmo-proxy-demo-") as tmp:
        folder = Path(tmp)
        passphrase = Secret(secrets.token_urlsafe(24))
        create_exclusive(folder / "passphrase", passphrase.encode())
        config_path = folder / "exmo-proxy.yaml"
        text = new_config_text("demo", key, secret, passphrase, state_dir="state")
        create_exclusive(config_path, text.encode())
        overrides = {"upstream": sim_listen.url(), "listen": f"{listen.host}:{listen.port}",
                     "ws_upstream": sim_listen.url().replace("http://", "ws://", 1)}
        if paper:
            overrides["paper"] = "all"
        config = load_config(config_path, PassphraseSources(explicit=str(folder / "passphrase")), overrides)
        sim_config = simulator.SimulatorConfig(accounts={key: secret.reveal()})
        sim = asyncio.create_task(simulator.serve_simulator(sim_config, sim_listen.host, sim_listen.port))
        try:
            await _wait_listening(sim_listen.host, sim_listen.port)
            announce = _curl_lines(listen.url(), sim_listen.url(), paper)
            await serve(config, on_ready=lambda: print(announce, flush=True))
        finally:
            sim.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim
