"""The access log and the request counters: one line and one count per answered request.

Both are done once per event-loop pass for all the requests answered in it: one write for many
lines when busy, and none of it on a client's latency. A line never holds a body, query string, Key,
Sign or token: only the names and numbers below.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from proxy.telemetry import logs
from proxy.telemetry.metrics import Metrics
from proxy.web.call import Call
from proxy.web.keys import LIVE, METRICS

log = logging.getLogger(__name__)

Answered = tuple[Call, int, float]  # request, status, latency in s
Line = tuple[str, dict[str, object]]


class Accounting:
    """Access lines and request counters of one app, batched per event-loop pass."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._pending: list[Answered] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # looked up once: a getpid() on 3.11

    def add(self, call: Call, status: int) -> None:
        if not self._pending:
            loop = self._loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self.flush)
        self._pending.append((call, status, time.monotonic() - call.started))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        log_them = self.app[LIVE].config.features.access_log
        metrics = self.app[METRICS]
        lines: list[Line] = []
        for call, status, latency_s in pending:
            try:
                lines += self._entry(call, status, latency_s, metrics, log_them)
            except Exception:  # one odd request must not cost the others their lines
                log.exception("could not account for request %s", call.request_id)
        if lines:
            logs.access(lines)

    @staticmethod
    def _entry(call: Call, status: int, latency_s: float, metrics: Metrics, log_them: bool) -> list[Line]:
        account, method, code = call.account, call.exmo_method, call.exmo_error
        metrics.observe_request(call.path, account, method, status, call.refused_by, code)
        if not log_them:
            return []
        client = call.client
        where = f"{call.remote or '-'} {call.method} {call.raw_path} {status}"
        return [(where, {
            "request_id": call.request_id, "client": client.name if client else None,
            "account": account, "method": method, "status": status, "exmo_error": code,
            "latency_ms": round(latency_s * 1000, 1),
        })]


ACCOUNTING = web.AppKey("accounting", Accounting)
