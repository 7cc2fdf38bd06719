"""The simulator's WebSocket routes: the socket handler, the maintenance drop, the flood, market ticks.

The exchange's side of a socket (login, subscriptions, pushes) is ws.py's; this wires it to aiohttp.
`POST /_sim/ws/maintenance` and `POST /_sim/ws/flood` are test controls, not EXMO's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from proxy.simulator.ws import PATHS, PING_S, Hub, Session

HUB = web.AppKey("ws_hub", Hub)


async def handle_socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=PING_S, autoping=True)
    await ws.prepare(request)
    hub = request.app[HUB]
    session = Session(hub, ws, PATHS[request.path])
    hub.sessions.add(session)
    hub.opened += 1
    try:
        await session.send({"event": "info", "code": 1, "message": "connection established",
                            "session_id": str(uuid.uuid4())})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await session.handle(message.data)
    except ConnectionResetError:
        pass  # the client went away mid-send
    finally:
        hub.sessions.discard(session)
    return ws


async def handle_maintenance(request: web.Request) -> web.Response:
    closed = await request.app[HUB].maintenance()
    return web.json_response({"closed": closed})


async def handle_flood(request: web.Request) -> web.Response:
    """`POST /_sim/ws/flood?topic=T&frames=N&bytes=M` (tests: a client that does not read)."""
    query = request.query
    sent_to = request.app[HUB].flood(query["topic"], int(query.get("frames", "1000")),
                                     int(query.get("bytes", "1000")))
    return web.json_response({"sockets": sent_to})


async def run_market(app: web.Application) -> AsyncIterator[None]:
    """The app's cleanup context: market ticks while the simulator runs."""
    ticks = asyncio.ensure_future(app[HUB].market_ticks())
    yield
    ticks.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticks
