"""The daemon's HTTP surface: `create_app(config) -> web.Application` (SPEC §5).

`handle_api` reads top to bottom as a request's way: method → parameters → account → policy →
pre-trade checks → kill switch → dispatch (nonce, signature, upstream) → EXMO's answer unchanged.
Handlers only raise; middleware.py turns exceptions into answers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

from aiohttp import web

from proxy import halt, policy, pretrade
from proxy.auditing import AuditTrail, CallRecord
from proxy.config import Account, Config
from proxy.dispatch import Dispatcher
from proxy.inbound import read_params
from proxy.market import SharedReads
from proxy.metrics import CONTENT_TYPE, Metrics
from proxy.middleware import (
    ACCOUNT,
    ACCOUNTING,
    CLIENT,
    EXMO_ERROR,
    EXMO_METHOD,
    LIVE,
    METRICS,
    REQUEST_ID,
    Accounting,
    Live,
    ProxyError,
    error_response,
    errors_and_access_log,
    quiet_parser_errors,
)
from proxy.nonce import NonceBook, wall_clock_ms
from proxy.policy import PolicyDenied
from proxy.ratelimit import RateLimiter
from proxy.upstream import Upstream, UpstreamResponse


@dataclass
class Runtime:
    live: Live
    upstream: Upstream
    dispatcher: Dispatcher
    audit: AuditTrail

    @property
    def config(self) -> Config:
        return self.live.config

    def apply(self, new: Config) -> list[str]:
        """Take a reloaded config; returns the settings that need a restart and were kept."""
        old = self.live.config
        restart_only = ("listen", "state_dir", "socket_mode", "management_listen")
        kept = [name for name in restart_only if getattr(new, name) != getattr(old, name)]
        if new.limits.max_body_bytes != old.limits.max_body_bytes:  # aiohttp's own cap is set at start
            kept.append("limits.max_body_bytes")
        if new.features.event_loop != old.features.event_loop:
            kept.append("event_loop")
        new = replace(new, listen=old.listen, state_dir=old.state_dir, socket_mode=old.socket_mode,
                      management_listen=old.management_listen,
                      limits=replace(new.limits, max_body_bytes=old.limits.max_body_bytes),
                      features=replace(new.features, event_loop=old.features.event_loop))
        for account in new.accounts.values():
            self.dispatcher.nonces.sequence(account.key)  # a bad state file refuses the reload here
        self.upstream.configure(new.upstream, new.limits)
        self.dispatcher.limiter.set_rate(new.limits.rate_per_second)
        self.dispatcher.shared.ttl = dict(new.cache)
        self.dispatcher.shared.clear()
        self.dispatcher.default_wait_s = new.limits.max_wait_s
        self.dispatcher.metrics.enabled = new.features.metrics
        self.audit.settings = self.audit.log.settings = new.audit
        self.live.config = new  # the swap: every request from here on sees the new config
        return kept


RUNTIME = web.AppKey("runtime", Runtime)
Clock = Callable[[], int]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")


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
    request[EXMO_METHOD] = method
    path = f"/{request.match_info['version']}/{method}"
    if request.method not in ("GET", "HEAD", "POST"):
        raise ProxyError(405, "http_method_not_allowed", "use POST (or GET for public methods)")
    params = await read_params(request)
    wait = _patience(request, runtime.config.limits.max_wait_s)
    if policy.is_public(method):
        http_method = "POST" if request.method == "POST" else "GET"
        return _pass_through(
            await runtime.dispatcher.public(http_method, path, params, wait)
        )
    if request.method != "POST":
        raise ProxyError(405, "post_required", f"{method} is a private method: send it with POST")
    account = resolve_account(runtime.config, request.match_info.get("account"),
                              request.headers.get("X-Exmo-Account"))
    request[ACCOUNT] = account.name
    client = request.get(CLIENT)
    record = CallRecord(request[REQUEST_ID], client.name if client else None, account.name, method, params)
    with runtime.audit.call(record):
        policy.check(account, method, client)
        pretrade.check(account, method, params)
        if method not in policy.ALLOWED_WHILE_HALTED and halt.is_halted(runtime.config.state_dir):
            raise PolicyDenied("halted", f"trading is halted: {method} is refused until `exmo-proxy halt"
                                         " off`; cancels, reads and balances still work")
        record.response = await runtime.dispatcher.private(account, path, params, wait,
                                                           _client_waiting(request), record.signed)
    code = record.exmo()[1]
    if code:
        request[EXMO_ERROR] = code
    return _pass_through(record.response)


def _patience(request: web.Request, default_s: float) -> float:
    """How long this client will wait for its turn: X-Max-Wait-Ms, else limits.max_wait_s."""
    header = request.headers.get("X-Max-Wait-Ms")
    if header is None:
        return default_s
    if not header.isdigit() or int(header) > 600_000:
        raise ProxyError(400, "bad_header", "X-Max-Wait-Ms must be whole milliseconds, 0..600000")
    return int(header) / 1000


def _client_waiting(request: web.Request) -> Callable[[], bool]:
    def waiting() -> bool:
        transport = request.transport
        return transport is not None and not transport.is_closing()

    return waiting


def apply_config(app: web.Application, new: Config) -> list[str]:
    """SIGHUP: swap in a reloaded config; the names of settings that still need a restart."""
    return app[RUNTIME].apply(new)


def begin_drain(app: web.Application) -> None:
    """SIGTERM: from now on, calls that have not been sent yet are answered 503 and not sent."""
    app[RUNTIME].dispatcher.draining = True


MAIN = web.AppKey("main", web.Application)


def _daemon(request: web.Request) -> web.Application:
    """The daemon's app: itself, or the one a management listener reports on."""
    return request.app.get(MAIN, request.app)


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_metrics(request: web.Request) -> web.Response:
    metrics = _daemon(request)[METRICS]
    if not metrics.enabled:
        # returned, not raised: the management app has no error middleware
        return error_response(404, "metrics_off", "metrics are switched off (metrics: false in the config)")
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def handle_readyz(request: web.Request) -> web.Response:
    runtime = _daemon(request)[RUNTIME]
    state = runtime.config.state_dir
    if not os.access(state, os.W_OK):
        return web.json_response({"status": "not ready", "reason": f"state_dir {state} is not writable"},
                                 status=503)
    if runtime.dispatcher.nonces.problem is not None:
        return web.json_response({"status": "not ready", "reason": runtime.dispatcher.nonces.problem
                                  + "; signing is refused until it can"}, status=503)
    if runtime.audit.unwritten is not None:
        return web.json_response({"status": "not ready", "reason": "the audit log cannot be written;"
                                  " signing is refused until it can"}, status=503)
    paused = runtime.dispatcher.limiter.paused_for()
    if paused:
        return web.json_response({"status": "ready", "exmo_rate_limit_pause_s": round(paused, 1)})
    return web.json_response({"status": "ready"})


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    config = app[LIVE].config
    upstream = Upstream(config.upstream, config.limits)
    nonces = NonceBook(config.state_dir, app[CLOCK])
    for account in config.accounts.values():
        nonces.sequence(account.key)  # read every key's state now: a bad state file fails start-up
    await upstream.start()
    limiter = RateLimiter(config.limits.rate_per_second)
    audit = AuditTrail(config.state_dir, config.audit)
    audit.open()
    dispatcher = Dispatcher(upstream, limiter, nonces, SharedReads(config.cache), app[METRICS])
    dispatcher.default_wait_s = config.limits.max_wait_s
    app[RUNTIME] = Runtime(app[LIVE], upstream, dispatcher, audit)
    try:
        yield
    finally:
        await upstream.close()
        audit.close()
        nonces.close()


def create_app(config: Config, clock: Callable[[], int] = wall_clock_ms) -> web.Application:
    """The daemon as an aiohttp application; the only place its parts are wired together."""
    quiet_parser_errors()
    app = web.Application(client_max_size=config.limits.max_body_bytes,
                          middlewares=[errors_and_access_log])
    app[LIVE] = Live(config)
    app[METRICS] = Metrics(enabled=config.features.metrics)
    app[ACCOUNTING] = Accounting(app)
    app[CLOCK] = clock
    app.cleanup_ctx.append(_runtime)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)
    version = r"{version:v1(?:\.1)?}"
    app.router.add_route("*", rf"/{version}/{{method:.+}}", handle_api)
    app.router.add_route("*", rf"/accounts/{{account:[A-Za-z0-9_-]+}}/{version}/{{method:.+}}", handle_api)
    return app


def create_management_app(main: web.Application) -> web.Application:
    """`management_listen`: /healthz, /readyz and /metrics only, for probes that cannot reach
    127.0.0.1 (kubelet HTTP probes, a Prometheus on another host). Nothing here can sign."""
    app = web.Application()
    app[MAIN] = main
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/readyz", handle_readyz)
    app.router.add_get("/metrics", handle_metrics)
    return app
