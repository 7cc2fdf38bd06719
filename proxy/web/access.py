"""The access log and the request counters: one line and one count per answered request.

Both are done once per event-loop pass for all the requests answered in it: one write for many
lines when busy, and none of it on a client's latency. A line never holds a body, query string, Key,
Sign or token: only the names and numbers below.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from proxy.telemetry import logs
from proxy.telemetry.metrics import Metrics
from proxy.web.keys import ACCOUNT, CLIENT, EXMO_ERROR, EXMO_METHOD, LIVE, METRICS, REQUEST_ID

log = logging.getLogger(__name__)

Answered = tuple[web.Request, int, str | None, float]  # request, status, refusing rule, latency in s
Line = tuple[str, dict[str, object]]


class Accounting:
    """Access lines and request counters of one app, batched per event-loop pass."""

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
        lines: list[Line] = []
        for request, status, refused_by, latency_s in pending:
            try:
                lines += self._entry(request, status, refused_by, latency_s, metrics, log_them)
            except Exception:  # one odd request must not cost the others their lines
                log.exception("could not account for request %s", request.get(REQUEST_ID))
        if lines:
            logs.access(lines)

    @staticmethod
    def _entry(request: web.Request, status: int, refused_by: str | None, latency_s: float,
               metrics: Metrics, log_them: bool) -> list[Line]:
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
