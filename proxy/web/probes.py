"""What probes and scrapers ask: /healthz (the process answers), /readyz (it can sign), /metrics.

The same handlers serve the daemon's own listener and `management_listen`, whose app holds the
daemon's app under `MAIN` and has no error middleware, so these return their answers, never raise.
"""

from __future__ import annotations

import os

from aiohttp import web

from proxy.telemetry.metrics import CONTENT_TYPE
from proxy.web.errors import error_response
from proxy.web.keys import MAIN, METRICS
from proxy.web.runtime import RUNTIME


def _daemon(request: web.Request) -> web.Application:
    """The daemon's app: itself, or the one a management listener reports on."""
    return request.app.get(MAIN, request.app)


async def handle_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def handle_metrics(request: web.Request) -> web.Response:
    metrics = _daemon(request)[METRICS]
    if not metrics.enabled:
        return error_response(404, "metrics_off", "metrics are switched off (metrics: false in the config)")
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def _not_ready(reason: str) -> web.Response:
    return web.json_response({"status": "not ready", "reason": reason}, status=503)


async def handle_readyz(request: web.Request) -> web.Response:
    runtime = _daemon(request)[RUNTIME]
    if runtime.dispatcher.draining:
        return web.json_response({"status": "draining", "reason": "shutting down: finishing the calls"
                                  " already accepted; send new ones to another instance"}, status=503)
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
        return web.json_response({"status": "ready", "exmo_rate_limit_pause_s": round(paused, 1)})
    return web.json_response({"status": "ready"})
