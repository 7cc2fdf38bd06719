"""Middlewares: browser guard, client authentication, body-size gate, and the one place exceptions
become answers.

Every refusal is a non-200 EXMO-shaped body (`{"result": false, "error": "proxy: ...",
"proxy_error": "<slug>"}`) so bots that check `result` see it, and every request gets one access
line (never a body, query string, Key, Sign or token).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from proxy import clients, guard, logs
from proxy.audit import AuditError
from proxy.config import Config
from proxy.dispatch import NotSent
from proxy.inbound import BadRequest
from proxy.metrics import Metrics
from proxy.nonce import NonceStateError
from proxy.policy import PolicyDenied
from proxy.ratelimit import RateLimited
from proxy.scopes import Client
from proxy.upstream import UpstreamError

log = logging.getLogger("proxy.app")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
@dataclass
class Live:
    """The config in force; SIGHUP swaps it in one assignment (server.py)."""

    config: Config


LIVE = web.AppKey("live", Live)
METRICS = web.AppKey("metrics", Metrics)
CLIENT = web.RequestKey("client", Client)
REQUEST_ID = web.RequestKey("request_id", str)
ACCOUNT = web.RequestKey("account", str)
EXMO_METHOD = web.RequestKey("exmo_method", str)
EXMO_ERROR = web.RequestKey("exmo_error", str)
REQUEST_ID_FORM = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # anything else is replaced, not echoed
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # probes: no token, no account names disclosed


class ProxyError(Exception):
    """A refusal of the daemon's own, with its HTTP status and slug."""

    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


def error_response(status: int, slug: str, message: str) -> web.Response:
    body = {"result": False, "error": f"proxy: {message}", "proxy_error": slug}
    return web.json_response(body, status=status)


_ROUTER_ERRORS = {
    404: ("unknown_route", "no such route; use POST /v1.1/<method> (or /accounts/<name>/v1.1/<method>)"),
    405: ("http_method_not_allowed", "HTTP method not allowed here"),
    413: ("body_too_large", "the body is larger than limits.max_body_bytes"),
}


def _map_exception(exc: Exception) -> web.Response:
    if isinstance(exc, ProxyError):
        return error_response(exc.status, exc.slug, str(exc))
    if isinstance(exc, BadRequest):
        return error_response(400, exc.slug, str(exc))
    if isinstance(exc, PolicyDenied):
        return error_response(403, exc.rule, str(exc))
    if isinstance(exc, RateLimited):
        response = error_response(429, "rate_limited", str(exc))
        response.headers["Retry-After"] = exc.retry_after_header
        return response
    if isinstance(exc, NotSent | UpstreamError):
        return error_response(exc.status, exc.slug, str(exc))
    if isinstance(exc, AuditError):
        return error_response(503, exc.slug, f"the audit log cannot be written ({exc}); refusing to sign")
    if isinstance(exc, NonceStateError):
        return error_response(503, exc.slug, f"{exc}; refusing to sign")
    if isinstance(exc, ConnectionResetError):  # the client hung up while sending its body
        return error_response(499, "client_gone", "the client disconnected before its request was read")
    if isinstance(exc, web.HTTPException) and exc.status in _ROUTER_ERRORS:
        return error_response(exc.status, *_ROUTER_ERRORS[exc.status])
    if isinstance(exc, web.HTTPException):
        return error_response(exc.status, "http_error", exc.reason)
    log.error("internal error handling a request: %s", type(exc).__name__, exc_info=exc)
    return error_response(500, "internal", "internal error; see the daemon log")


def _gate(request: web.Request) -> None:
    """Before any handler: browsers, body size (by its declared length), and the bearer token."""
    config = request.app[LIVE].config
    guard.check(request.headers, config.listen)
    if (request.content_length or 0) > config.limits.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(max_size=config.limits.max_body_bytes,
                                            actual_size=request.content_length or 0)
    if config.clients and request.path not in OPEN_PATHS:
        client = clients.authenticate(request.headers.get("Authorization"), config.clients)
        if client is None:
            raise ProxyError(401, "unauthorized", "missing or unknown bearer token: send Authorization:"
                                                  " Bearer <token> (from `exmo-proxy client add`)")
        request[CLIENT] = client


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
        refused_by = exc.rule if isinstance(exc, PolicyDenied) else None
        response = _map_exception(exc)
    if response.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    response.headers["X-Request-Id"] = request_id
    # The access line and the counters wait until the answer is on its way: aiohttp writes it in this
    # same step, right after we return, so they are off the client's latency (the audit entry, which
    # is a guarantee, was written before the answer: auditing.py).
    request.app[ACCOUNTING].add(request, response.status, refused_by, time.monotonic() - started)
    return response


Answered = tuple[web.Request, int, str | None, float]  # request, status, refusing rule, latency in s


class Accounting:
    """Access lines and request counters, done once per event-loop pass for all the requests answered
    in it: one write for many lines when busy, and none of it on a client's latency."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._pending: list[Answered] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once: a getpid() on 3.11

    def add(self, request: web.Request, status: int, refused_by: str | None, latency_s: float) -> None:
        if not self._pending:
            loop = self._loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self.flush)
        self._pending.append((request, status, refused_by, latency_s))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        log_them = self.app[LIVE].config.features.access_log
        metrics = self.app[METRICS]
        lines: list[tuple[str, dict[str, object]]] = []
        for request, status, refused_by, latency_s in pending:
            try:
                lines += self._entry(request, status, refused_by, latency_s, metrics, log_them)
            except Exception:  # one odd request must not cost the others their lines
                log.exception("could not account for request %s", request.get(REQUEST_ID))
        if lines:
            logs.access(lines)

    @staticmethod
    def _entry(request: web.Request, status: int, refused_by: str | None, latency_s: float,
               metrics: Metrics, log_them: bool) -> list[tuple[str, dict[str, object]]]:
        account, method, code = request.get(ACCOUNT), request.get(EXMO_METHOD), request.get(EXMO_ERROR)
        metrics.observe_request(request.path, account, method, status, refused_by, code)
        if not log_them:
            return []
        client = request.get(CLIENT)
        where = f"{request.remote or '-'} {request.method} {request.rel_url.raw_path} {status}"
        return [(where, {
            "request_id": request[REQUEST_ID], "client": client.name if client else None,
            "account": account, "method": method, "status": status, "exmo_error": code,
            "latency_ms": round(latency_s * 1000, 1),
        })]


ACCOUNTING = web.AppKey("accounting", Accounting)


class QuietParserErrors(logging.Filter):
    """aiohttp logs every unparsable request with a traceback at ERROR; any local client could flood
    the log that way. Keep one line, no traceback, for what is the client's fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | ConnectionResetError):
            record.msg, record.args = "refused a malformed request: %s", (type(exc).__name__,)
            record.exc_info, record.exc_text, record.levelno, record.levelname = None, None, 30, "WARNING"
        return True


def quiet_parser_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietParserErrors) for f in server_log.filters):
        server_log.addFilter(QuietParserErrors())
