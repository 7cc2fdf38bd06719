"""The one middleware: a request id, the gate (browser guard, body size, bearer token), the handler,
and the answer to whatever it raised (errors.py); then the request is handed to the access log.

Handlers only raise: every refusal becomes a non-200 EXMO-shaped body here, and every request gets
one access line (access.py).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.policy.rules import PolicyDenied
from proxy.web import guard
from proxy.web.access import ACCOUNTING
from proxy.web.auth import require_client
from proxy.web.errors import ProxyError, answer_for
from proxy.web.keys import CLIENT, LIVE, REQUEST_ID

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_FORM = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # anything else is replaced, not echoed
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes: no token, no account names disclosed


def _gate(request: web.Request) -> None:
    """Before any handler: tunnels, browsers, foreign hosts (in Host or an absolute-form target), body
    size (by its declared length), and the bearer token."""
    config = request.app[LIVE].config
    if request.method == "CONNECT":  # this is not a forward proxy: no tunnels to anywhere
        raise ProxyError(405, "http_method_not_allowed", "CONNECT is not served: this daemon is not a"
                                                         " forward proxy; send POST /v1.1/<method>")
    guard.check(request.headers, config.listen, request.raw_path)
    if (request.content_length or 0) > config.limits.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=config.limits.max_body_bytes,
                                            actual_size=request.content_length or 0)
    if config.clients and request.path not in OPEN_PATHS:
        request[CLIENT] = require_client(request.headers.get("Authorization"), config.clients)


_ID_PREFIX = secrets.token_hex(8)  # per process; with a counter, ids stay unique across restarts
_ids = itertools.count(1)


def new_request_id() -> str:
    """A fresh id for a request that brought none: cheaper than uuid4 (no syscall), as unique in practice."""
    return f"{_ID_PREFIX}{next(_ids):016x}"  # 32 hex digits, like the uuid4 hex it replaces


@web.middleware
async def errors_and_access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    offered = request.headers.get("X-Request-Id")
    request_id = offered if offered and REQUEST_ID_FORM.match(offered) else new_request_id()
    request[REQUEST_ID] = request_id
    started = time.monotonic()
    refused_by = None
    try:
        _gate(request)
        response = await handler(request)
    except Exception as exc:
        refused_by = exc.slug if isinstance(exc, PolicyDenied) else None
        response = answer_for(exc)
    if not response.prepared:  # a WebSocket stream sent its headers at the upgrade (web/sockets.py)
        response.headers["X-Request-Id"] = request_id
    if request.method == "CONNECT":  # aiohttp would keep the connection as a tunnel: close it instead
        response.force_close()
    # The access line and the counters wait until the answer is on its way: aiohttp writes it in this
    # same step, right after we return, so they are off the client's latency (the audit entry, which
    # is a guarantee, was written before the answer: audit/trail.py).
    request.app[ACCOUNTING].add(request, response.status, refused_by, time.monotonic() - started)
    return response
