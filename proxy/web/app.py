"""`create_app(config) -> web.Application`: the only place the daemon's parts are wired (SPEC §5).

Routes go to handlers.py (the API) and probes.py (health, readiness, metrics); the parts with a start
and a stop (upstream pool, nonce state, audit log) live in the app's cleanup context.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from proxy.audit.trail import AuditTrail
from proxy.calls.dispatch import Dispatcher
from proxy.calls.idempotency import Idempotency
from proxy.calls.idempotency_store import IdempotencyStore
from proxy.calls.nonce import NonceBook
from proxy.calls.nonce_store import wall_clock_ms
from proxy.calls.ratelimit import RateLimiter
from proxy.calls.records import LocalRecords, Records, SharedRecords
from proxy.calls.shared_rate import SharedRateLimiter
from proxy.calls.shared_reads import SharedReads
from proxy.config.model import Config
from proxy.streams.relay import Relay
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.web import paper_calls, probes, sockets
from proxy.web.access import ACCOUNTING, Accounting
from proxy.web.call import Call, Reply
from proxy.web.errors import router_error
from proxy.web.handlers import api, handle_api
from proxy.web.keys import CLOCK, LIVE, MAIN, METRICS, Live
from proxy.web.middleware import errors_and_access_log, respond
from proxy.web.runtime import RUNTIME, Runtime
from proxy.web.server_log import quiet_parser_errors


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    config = app[LIVE].config
    upstream = Upstream(config.upstream, config.limits)
    nonces = NonceBook(config.state_dir, app[CLOCK])
    nonces.load_keys(a.key for a in config.accounts.values())  # a bad state file fails start-up here
    nonces.write_ahead()
    await upstream.start()
    coordinator = None
    limiter = RateLimiter(config.limits.rate_per_second)
    if config.redis is not None:  # several daemons on one key: shared lease, nonces, rate, halt
        from proxy.coord.client import Coordinator  # redis-py (~7 MiB) only for a daemon that uses it

        coordinator = Coordinator(config.redis, app[METRICS].redis_checked)
        await coordinator.start()
        limiter = SharedRateLimiter(coordinator, config.limits.rate_per_second)
    audit = AuditTrail(config.state_dir, config.audit)
    audit.open()
    dispatcher = Dispatcher(upstream, limiter, nonces, SharedReads(config.cache), app[METRICS])
    dispatcher.reconfigure(config.limits, config.cache)
    relay = Relay(nonces, audit, app[METRICS])
    relay.configure(config.streams, config.limits, config.ws_upstream)
    await relay.start()
    journal = None
    if coordinator is not None:  # a retry may reach another daemon: the records are shared
        limits = config.limits
        kept: Records = SharedRecords(coordinator, config.idempotency_ttl_s,
                                      limits.max_wait_s + limits.upstream_timeout_s + 5)
    else:
        journal = IdempotencyStore(config.state_dir, config.idempotency_ttl_s)
        journal.open()
        kept = LocalRecords(journal)
    paper = paper_calls.desk(config, dispatcher)
    app[RUNTIME] = Runtime(app[LIVE], upstream, limiter, nonces, dispatcher, audit, app[METRICS],
                           Idempotency(kept, app[METRICS]), relay, paper, coordinator)
    try:
        async with paper_calls.running(paper, any(a.paper for a in config.accounts.values())):
            yield
    finally:
        await relay.close()
        await upstream.close()
        if coordinator is not None:
            await coordinator.close()
        audit.close()
        if journal is not None:
            journal.close()
        await nonces.settle()
        nonces.close()


VERSION = r"v1(?:\.1)?"  # EXMO's API versions in a path


def create_app(config: Config, clock: Callable[[], int] = wall_clock_ms) -> web.Application:
    """The daemon as an aiohttp application."""
    quiet_parser_errors()
    app = web.Application(client_max_size=config.limits.max_body_bytes,
                          middlewares=[errors_and_access_log])
    app[LIVE] = Live(config)
    app[METRICS] = Metrics(enabled=config.features.metrics)
    app[ACCOUNTING] = Accounting(app)
    app[CLOCK] = clock
    app.cleanup_ctx.append(_runtime)
    probes.add_routes(app)
    sockets.add_routes(app)  # before the API's routes: /v1/private is a stream, not a method
    version = f"{{version:{VERSION}}}"
    app.router.add_route("*", rf"/{version}/{{method:.+}}", handle_api)
    app.router.add_route("*", rf"/accounts/{{account:{sockets.ACCOUNT}}}/{version}/{{method:.+}}", handle_api)
    return app


# The routes above, as front.py serves them: the same answers, without aiohttp's router.
API_PATH = re.compile(rf"/(?:accounts/(?P<account>{sockets.ACCOUNT})/)?(?P<version>{VERSION})/(?P<method>.+)")
_STREAMS = "|".join(map(re.escape, sockets.STREAM_PATHS))
STREAM_PATH = re.compile(rf"(?:/accounts/{sockets.ACCOUNT})?(?P<stream>{_STREAMS})")


def _unquote(value: str) -> str:
    """A route's part as aiohttp gives it: what matching left encoded, decoded."""
    return value.replace("%2F", "/").replace("%25", "%") if "%" in value else value


def front_handler(app: web.Application) -> Callable[[Call], Awaitable[Reply]]:
    """`serve(call)` for front.py: the probes, a stream path asked without an upgrade, the API."""

    async def route(call: Call) -> Reply:
        path = call.route
        probe = probes.PROBES.get(path)
        if probe is not None:
            if call.method not in ("GET", "HEAD"):
                raise router_error(405)
            return probe(app)
        if call.method in ("GET", "HEAD"):
            stream = STREAM_PATH.fullmatch(path)
            if stream is not None:
                call.exmo_method = f"ws{stream['stream']}"
                raise sockets.websocket_required(stream["stream"], call.path)
        match = API_PATH.fullmatch(path)
        if match is None:
            raise router_error(404)
        return await api(app[RUNTIME], call, match["version"], _unquote(match["method"]), match["account"])

    async def serve(call: Call) -> Reply:
        return await respond(app, call, route)

    return serve


def create_management_app(main: web.Application) -> web.Application:
    """`management_listen`: /healthz, /readyz and /metrics only, for probes that cannot reach
    127.0.0.1 (kubelet HTTP probes, a Prometheus on another host). Nothing here can sign."""
    app = web.Application()
    app[MAIN] = main
    probes.add_routes(app)
    return app


def apply_config(app: web.Application, new: Config) -> list[str]:
    """SIGHUP: swap in a reloaded config; the names of settings that still need a restart."""
    return app[RUNTIME].apply(new)


def begin_drain(app: web.Application) -> None:
    """SIGTERM: calls inside are sent while their answer fits in `shutdown_grace_s`; /readyz says
    draining (Dispatcher.begin_drain)."""
    config = app[LIVE].config
    app[RUNTIME].dispatcher.begin_drain(config.shutdown_grace_s, config.limits.upstream_timeout_s)
    app[RUNTIME].relay.begin_drain()
