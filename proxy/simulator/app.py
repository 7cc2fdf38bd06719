"""aiohttp wiring of the simulator: routes, the JSON envelope and the error middleware.

``/v1/{method}`` and ``/v1.1/{method}`` (a trailing slash is accepted, exmo-api.md §1.1) answer
GET and POST; ``/v1/public``, ``/v1/private`` and ``/v1/margin/private`` upgrade to EXMO's WebSocket
API (ws.py), and a private call that succeeds tells the account's sockets. ``GET /_sim/stats``,
``POST /_sim/market`` (move a pair's price), ``POST /_sim/ws/maintenance`` and ``POST /_sim/ws/flood``
exist only on the simulator.
Every API answer, error or not, is HTTP 200 JSON with ``charset=utf-8`` (§4.1).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from proxy.exchange.errors import ExmoError
from proxy.simulator import market
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.pipeline import Call, Simulator
from proxy.simulator.ws import PATHS, Hub
from proxy.simulator.ws_routes import HUB, handle_flood, handle_maintenance, handle_socket, run_market

SIMULATOR = web.AppKey("simulator", Simulator)
API_ROUTE = r"/{version:v1|v1\.1}/{method:.+}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def exmo_json(payload: Any) -> web.Response:
    """EXMO's compact JSON; aiohttp adds ``; charset=utf-8`` to the content type."""
    text = json.dumps(payload, separators=(",", ":"))
    return web.Response(text=text, content_type="application/json", charset="utf-8")


@web.middleware
async def exmo_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn an ``ExmoError`` into its HTTP 200 envelope and count it."""
    try:
        return await handler(request)
    except ExmoError as exc:
        request.app[SIMULATOR].stats.error(exc.code)
        return exmo_json(exc.payload)


async def _to_call(request: web.Request) -> Call:
    return Call(
        version=request.match_info["version"],
        method=request.match_info["method"].strip("/"),
        verb=request.method,
        query_string=request.query_string,
        query={k: v for k, v in reversed(list(request.query.items()))},  # first value wins
        body=await request.read() if request.method == "POST" else b"",
        key=request.headers.get("Key"),
        sign=request.headers.get("Sign"),
        remote=request.remote or "unknown",
    )


async def handle_api(request: web.Request) -> web.Response:
    call = await _to_call(request)
    answer = await request.app[SIMULATOR].call(call)
    if call.key is not None and call.key in request.app[HUB].accounts:
        await request.app[HUB].changed(call.key)  # a signed call ran: its sockets hear what changed
    return exmo_json(answer)


async def handle_socket_or_api(request: web.Request) -> web.StreamResponse:
    """EXMO's WebSocket paths are also REST-shaped paths: an upgrade goes to ws.py, anything else on."""
    if web.WebSocketResponse().can_prepare(request).ok:
        return await handle_socket(request)
    return await handle_api(request)


async def handle_market(request: web.Request) -> web.Response:
    """`POST /_sim/market?pair=P&price=X` (a test control, not EXMO's): the market of P moves to X;
    resting orders it crosses fill as maker, and their accounts' sockets hear it. The fills."""
    pair = market.find(request.query.get("pair", ""))
    try:
        price = Decimal(request.query.get("price", ""))
    except InvalidOperation:
        price = Decimal(0)
    if pair is None or not price.is_finite() or price <= 0:
        return web.json_response({"error": "pair=KNOWN_PAIR&price=POSITIVE_NUMBER"}, status=400)
    exchange = request.app[SIMULATOR].exchange
    fills = exchange.move(pair, price)
    for key in fills:
        await request.app[HUB].changed(key)
    return web.json_response({"pair": pair.name, "price": market.num(exchange.price(pair)),
                              "fills": {key[:8]: len(trades) for key, trades in fills.items()}})


async def handle_stats(request: web.Request) -> web.Response:
    return exmo_json({**request.app[SIMULATOR].stats_snapshot(), "ws": request.app[HUB].snapshot()})


def create_simulator_app(config: SimulatorConfig) -> web.Application:
    """The simulator as an aiohttp application (used by tests and ``serve_simulator``)."""
    app = web.Application(middlewares=[exmo_errors])
    simulator = app[SIMULATOR] = Simulator(config)
    app[HUB] = Hub(dict(config.accounts), simulator.exchange, simulator.nonces.accept)
    for path in PATHS:
        app.router.add_get(path, handle_socket_or_api, allow_head=False)
    app.router.add_post("/_sim/ws/maintenance", handle_maintenance)
    app.router.add_post("/_sim/ws/flood", handle_flood)
    app.cleanup_ctx.append(run_market)
    app.router.add_get(API_ROUTE, handle_api, allow_head=False)
    app.router.add_post(API_ROUTE, handle_api)
    app.router.add_get("/_sim/stats", handle_stats, allow_head=False)
    app.router.add_post("/_sim/market", handle_market)
    return app
