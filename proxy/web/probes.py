"""What probes and scrapers ask: /healthz (the process answers), /readyz (it can sign), /metrics.

`healthz`, `readyz` and `metrics` answer for the daemon's app whichever server asked: front.py on the
daemon's listener, aiohttp on `management_listen` (whose app holds the daemon's app under `MAIN` and
has no error middleware, so these return their answers, never raise).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.telemetry.metrics import CONTENT_TYPE
from proxy.web.call import Reply
from proxy.web.errors import error_response
from proxy.web.keys import MAIN, METRICS
from proxy.web.runtime import RUNTIME

_OK = Reply.json({"status": "ok"})


def healthz(app: web.Application) -> Reply:
    return _OK


def metrics(app: web.Application) -> Reply:
    counters = app[METRICS]
    if not counters.enabled:
        return error_response(404, "metrics_off", "metrics are switched off (metrics: false in the config)")
    return Reply(200, counters.render(), CONTENT_TYPE)


def _not_ready(reason: str) -> Reply:
    return Reply.json({"status": "not ready", "reason": reason}, 503)


def readyz(app: web.Application) -> Reply:
    runtime = app[RUNTIME]
    if runtime.dispatcher.draining:
        return Reply.json({"status": "draining", "reason": "shutting down: finishing the calls already"
                           " accepted; send new ones to another instance"}, 503)
    state = runtime.config.state_dir
    if not os.access(state, os.W_OK):
        return _not_ready(f"state_dir {state} is not writable")
    if runtime.nonces.problem is not None:
        return _not_ready(runtime.nonces.problem + "; signing is refused until it can")
    if runtime.audit.unwritten is not None:
        return _not_ready("the audit log cannot be written; signing is refused until it can")
    if runtime.coordinator is not None and runtime.coordinator.problem is not None:
        return _not_ready(f"redis: {runtime.coordinator.problem}; signing is refused until it answers")
    paused = runtime.limiter.paused_for()
    if paused:
        return Reply.json({"status": "ready", "exmo_rate_limit_pause_s": round(paused, 1)})
    return Reply.json({"status": "ready"})


PROBES: dict[str, Callable[[web.Application], Reply]] = {"/healthz": healthz, "/readyz": readyz,
                                                         "/metrics": metrics}


def _aiohttp(probe: Callable[[web.Application], Reply]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        # the daemon's app: this one, or the one a management listener reports on
        return probe(request.app.get(MAIN, request.app)).response()

    return handle


def add_routes(app: web.Application) -> None:
    """The probes on an aiohttp app (GET and HEAD)."""
    for path, probe in PROBES.items():
        app.router.add_get(path, _aiohttp(probe))
