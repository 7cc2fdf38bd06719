"""The WebSocket paths (SPEC §5b): EXMO's own, so a client changes only the host.

`GET /v1/public`, `/v1/private`, `/v1/margin/private` with `Upgrade: websocket`, also under
`/accounts/NAME/`. Everything a stream can be refused for is refused here, before the upgrade, with an
HTTP answer the client can read: the middleware's gate (browser `Origin`/`Sec-Fetch-Site`, a foreign
`Host`, a missing token) has run already; then the account and the client's scopes (private paths),
then the caps. No socket to EXMO is opened for a refused client. The stream itself is streams/'s.
"""

from __future__ import annotations

from aiohttp import web

from proxy.policy import rules
from proxy.streams.parts import Who
from proxy.streams.stream import CLIENT_HEARTBEAT_S, CLOSE_TIMEOUT_S, MAX_FRAME_BYTES
from proxy.web.errors import ProxyError
from proxy.web.handlers import resolve_account
from proxy.web.keys import CALL
from proxy.web.paper_stream import PaperStream
from proxy.web.runtime import RUNTIME

ACCOUNT = r"[A-Za-z0-9_-]+"  # an account name in a path: /accounts/NAME/...
STREAM_PATHS = {"/v1/public": "public", "/v1/private": "private", "/v1/margin/private": "margin"}


def add_routes(app: web.Application) -> None:
    for path in STREAM_PATHS:
        app.router.add_get(path, handle_stream)
        app.router.add_get(f"/accounts/{{account:{ACCOUNT}}}{path}", handle_stream)


def websocket_required(path: str, asked: str) -> ProxyError:
    """The answer to a plain HTTP request for a stream path (`asked` is the path as requested)."""
    return ProxyError(426, "websocket_required", f"{path} is EXMO's WebSocket API: connect with a"
                                                 f" WebSocket client (ws://<this daemon>{asked})")


async def handle_stream(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    call = request[CALL]
    path = request.path
    named = request.match_info.get("account")
    if named is not None:
        path = path.removeprefix(f"/accounts/{named}")
    kind = STREAM_PATHS[path]
    call.exmo_method = f"ws{path}"
    socket = web.WebSocketResponse(heartbeat=CLIENT_HEARTBEAT_S, autoping=True, max_msg_size=MAX_FRAME_BYTES,
                                   timeout=CLOSE_TIMEOUT_S, compress=False)
    if not socket.can_prepare(request).ok:
        raise websocket_required(path, request.path)
    client = call.client
    account = None
    if kind != "public":
        account = resolve_account(runtime.config, named, request.headers.get("X-Exmo-Account"))
        call.account = account.name
        rules.check_stream(account, client)
        if account.paper and kind != "private":
            raise ProxyError(501, "not_in_paper_mode", f"account {account.name} paper-trades: it has no"
                                                       " margin stream")
    runtime.relay.admit(client.name if client else None)
    socket.headers["X-Request-Id"] = call.request_id
    await socket.prepare(request)
    if account is not None and account.paper:  # served from the paper ledger: nothing is signed or sent
        runtime.metrics.stream_opened("paper", 1)
        try:
            async with runtime.relay.counted(client.name if client else None, socket):
                await PaperStream(runtime.paper, account.name, socket).serve()
        finally:
            runtime.metrics.stream_opened("paper", -1)
        return socket
    who = Who(call.request_id, client.name if client else None, account, path, kind)
    await runtime.relay.serve(who, socket, request.transport)
    return socket
