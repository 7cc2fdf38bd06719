"""Around every request: a request id, the gate (browser guard, body size, bearer token), the handler,
and the answer to whatever it raised (errors.py); then the request is handed to the access log.

Handlers only raise: every refusal becomes a non-200 EXMO-shaped body here, and every request gets
one access line (access.py). `respond` is this for front.py's requests, `errors_and_access_log` the
same as aiohttp middleware.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.config.model import Config
from proxy.web import guard
from proxy.web.access import ACCOUNTING
from proxy.web.auth import require_client
from proxy.web.call import Call, Reply
from proxy.web.errors import ProxyError, answer_for, router_error
from proxy.web.keys import CALL, LIVE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_FORM = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # anything else is replaced, not echoed
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes: no token, no account names disclosed
_ID_PREFIX = secrets.token_hex(8)  # per process; with a counter, ids stay unique across restarts
_ids = itertools.count(1)


def new_request_id() -> str:
    """A fresh id for a request that brought none: cheaper than uuid4 (no syscall), as unique in practice."""
    return f"{_ID_PREFIX}{next(_ids):016x}"  # 32 hex digits, like the uuid4 hex it replaces


def admit(call: Call, config: Config) -> None:
    """Before any handler: the request id, then tunnels, browsers, foreign hosts (in Host or an
    absolute-form target), body size (by its declared length), and the bearer token."""
    offered = call.headers.get("X-Request-Id")
    call.request_id = offered if offered and REQUEST_ID_FORM.match(offered) else new_request_id()
    if call.method == "CONNECT":  # this is not a forward proxy: no tunnels to anywhere
        raise ProxyError(405, "http_method_not_allowed", "CONNECT is not served: this daemon is not a"
                                                         " forward proxy; send POST /v1.1/<method>")
    guard.check(call.headers, config.listen, call.target)
    if call.refused is not None:
        raise call.refused
    if config.clients and call.path not in OPEN_PATHS:
        call.client = require_client(call.headers.get("Authorization"), config.clients)


async def respond(app: web.Application, call: Call, handle: Callable[[Call], Awaitable[Reply]]) -> Reply:
    """`handle(call)`'s answer, or the answer to what it (or the gate) raised; then the access line."""
    try:
        admit(call, app[LIVE].config)
        reply = await handle(call)
    except Exception as exc:
        reply = answer_for(exc, call)
    # The access line and the counters wait until the answer is on its way (access.py): they are off
    # the client's latency (the audit entry, which is a guarantee, was written before: audit/trail.py).
    app[ACCOUNTING].add(call, reply.status)
    return reply


@web.middleware
async def errors_and_access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    call = request[CALL] = Call.of(request)
    config = request.app[LIVE].config
    if (request.content_length or 0) > config.limits.max_body_bytes:
        call.refused = router_error(413)
    try:
        admit(call, config)
        response = await handler(request)
    except Exception as exc:
        response = answer_for(exc, call).response()
    if not response.prepared:  # a WebSocket stream sent its headers at the upgrade (web/sockets.py)
        response.headers["X-Request-Id"] = call.request_id
        if call.method == "CONNECT":  # aiohttp would keep the connection as a tunnel: close it instead
            response.force_close()
    request.app[ACCOUNTING].add(call, response.status)
    return response
