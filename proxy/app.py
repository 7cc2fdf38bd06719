"""The daemon's HTTP surface: `create_app(config) -> web.Application` (SPEC §5).

Every handler raises; one middleware turns our exceptions into a non-200 EXMO-shaped body
(`{"result": false, "error": "proxy: ...", "proxy_error": "<slug>"}`) so bots that check `result`
see it, and writes the one access line per request (never a body, Key, Sign or query string).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from proxy import guard, policy
from proxy.config import Account, Config
from proxy.dispatch import Dispatcher, NotSent
from proxy.inbound import BadRequest, read_params
from proxy.nonce import NonceBook, NonceStateError, wall_clock_ms
from proxy.policy import PolicyDenied
from proxy.ratelimit import RateLimited, RateLimiter
from proxy.upstream import Upstream, UpstreamError, UpstreamResponse

log = logging.getLogger(__name__)
access_log = logging.getLogger("proxy.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProxyError(Exception):
    """A refusal of the daemon's own, with its HTTP status and slug."""

    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug


@dataclass
class Runtime:
    config: Config
    dispatcher: Dispatcher


CONFIG = web.AppKey("config", Config)
RUNTIME = web.AppKey("runtime", Runtime)
Clock = Callable[[], int]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")


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
    if isinstance(exc, NonceStateError):
        return error_response(503, exc.slug, f"{exc}; refusing to sign")
    if isinstance(exc, web.HTTPException) and exc.status in _ROUTER_ERRORS:
        return error_response(exc.status, *_ROUTER_ERRORS[exc.status])
    if isinstance(exc, web.HTTPException):
        return error_response(exc.status, "http_error", exc.reason)
    log.error("internal error handling a request: %s", type(exc).__name__, exc_info=exc)
    return error_response(500, "internal", "internal error; see the daemon log")


@web.middleware
async def errors_and_access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    started = time.monotonic()
    try:
        guard.check(request.headers, request.app[CONFIG].listen)
        response = await handler(request)
    except Exception as exc:
        response = _map_exception(exc)
    response.headers["X-Request-Id"] = request_id
    access_log.info(
        "%s %s %s %d %.1fms id=%s", request.remote or "-", request.method, request.path,
        response.status, (time.monotonic() - started) * 1000, request_id,
    )
    return response


def resolve_account(config: Config, from_path: str | None, from_header: str | None) -> Account:
    if from_path and from_header and from_path != from_header:
        raise ProxyError(400, "account_conflict",
                         f"path names account {from_path!r} but X-Exmo-Account says {from_header!r}")
    name = from_path or from_header or config.default_account
    if name is None:
        raise ProxyError(400, "account_required",
                         f"several accounts are configured ({', '.join(config.accounts)}); choose one with"
                         " the X-Exmo-Account header or /accounts/<name>/v1.1/<method>")
    if name not in config.accounts:
        raise ProxyError(404, "unknown_account", f"no account named {name!r} in the config")
    return config.accounts[name]


def _method(request: web.Request) -> str:
    method = request.match_info["method"]
    method = method[:-1] if method.endswith("/") else method
    if not policy.is_valid_method(method):
        raise ProxyError(400, "bad_method", "method names are lower-case words joined by _ or /")
    return method


def _pass_through(resp: UpstreamResponse) -> web.Response:
    response = web.Response(status=resp.status, body=resp.body)
    if resp.content_type:
        response.headers["Content-Type"] = resp.content_type
    return response


async def handle_api(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    method = _method(request)
    path = f"/{request.match_info['version']}/{method}"
    params = await read_params(request)
    wait = runtime.config.limits.max_wait_s
    if request.method not in ("GET", "HEAD", "POST"):
        raise ProxyError(405, "http_method_not_allowed", "use POST (or GET for public methods)")
    if policy.is_public(method):
        http_method = "POST" if request.method == "POST" else "GET"
        return _pass_through(
            await runtime.dispatcher.public(http_method, path, params, wait, _client_waiting(request))
        )
    if request.method != "POST":
        raise ProxyError(405, "post_required", f"{method} is a private method: send it with POST")
    account = resolve_account(runtime.config, request.match_info.get("account"),
                              request.headers.get("X-Exmo-Account"))
    policy.check(account, method)
    return _pass_through(
        await runtime.dispatcher.private(account, path, params, wait, _client_waiting(request))
    )


def _client_waiting(request: web.Request) -> Callable[[], bool]:
    def waiting() -> bool:
        transport = request.transport
        return transport is not None and not transport.is_closing()

    return waiting


def begin_drain(app: web.Application) -> None:
    """SIGTERM: from now on, calls that have not been sent yet are answered 503 and not sent."""
    app[RUNTIME].dispatcher.draining = True


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    state = runtime.config.state_dir
    if not os.access(state, os.W_OK):
        return web.json_response({"status": "not ready", "reason": f"state_dir {state} is not writable"},
                                 status=503)
    return web.json_response({"status": "ready", "accounts": sorted(runtime.config.accounts)})


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    upstream = Upstream(config.upstream, config.limits)
    nonces = NonceBook(config.state_dir, app[CLOCK])
    for account in config.accounts.values():
        nonces.sequence(account.key)  # read every key's state now: a bad state file fails start-up
    await upstream.start()
    limiter = RateLimiter(config.limits.rate_per_second)
    app[RUNTIME] = Runtime(config, Dispatcher(upstream, limiter, nonces))
    try:
        yield
    finally:
        await upstream.close()
        nonces.close()


def create_app(config: Config, clock: Callable[[], int] = wall_clock_ms) -> web.Application:
    """The daemon as an aiohttp application; the only place its parts are wired together."""
    app = web.Application(client_max_size=config.limits.max_body_bytes,
                          middlewares=[errors_and_access_log])
    app[CONFIG] = config
    app[CLOCK] = clock
    app.cleanup_ctx.append(_runtime)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    version = r"{version:v1(?:\.1)?}"
    app.router.add_route("*", rf"/{version}/{{method:.+}}", handle_api)
    app.router.add_route("*", rf"/accounts/{{account:[A-Za-z0-9_-]+}}/{version}/{{method:.+}}", handle_api)
    return app
