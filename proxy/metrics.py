"""Prometheus metrics at GET /metrics, made with prometheus-client (SPEC §5).

One registry per app (not the library's global one), so every app — and every test — counts on its
own. Labels are bounded: routes and method classes are fixed sets, accounts and refusal rules come
from the config and the code, EXMO error codes are numbers EXMO sends (a handful in practice).

The hot path calls the `count_*`/`time_*` methods below, never `.labels()`: a labelled child is looked
up once and kept (prometheus-client's own lookup takes a lock and builds a key on every call), and the
queue depth is read at scrape time instead of being counted under a lock twice per call.
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from proxy import __version__, policy

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@functools.lru_cache(maxsize=512)  # method names are validated words; a few dozen exist
def method_class(method: str | None) -> str:
    if method is None:
        return "none"
    if policy.is_public(method):
        return "public"
    if method in policy.MONEY_OUT:
        return "money_out"
    if method in policy.TRADE_METHODS:
        return "trade"
    return "read" if method in policy.READ_METHODS else "other"


class Metrics:
    """The daemon's counters; `enabled=False` (config `metrics: false`) makes every count a no-op."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("exmo_proxy_requests", "Requests answered, by route, account, method"
                                " class and outcome", ["route", "account", "method_class", "outcome"],
                                registry=r)
        self.upstream_latency = Histogram("exmo_proxy_upstream_latency_seconds", "Time EXMO took to answer",
                                          ["method_class"], registry=r,
                                          buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.exmo_errors = Counter("exmo_proxy_exmo_errors", "EXMO error codes seen in answers", ["code"],
                                   registry=r)
        self.nonce_resyncs = Counter("exmo_proxy_nonce_resyncs", "40009 answers that moved a nonce up",
                                     registry=r)
        self.refusals = Counter("exmo_proxy_refusals", "Calls refused before signing, by rule", ["rule"],
                                registry=r)
        self.rate_limited = Counter("exmo_proxy_rate_limited", "Calls refused with 429 (queue full or"
                                    " EXMO's pause)", registry=r)
        self.queue_wait = Histogram("exmo_proxy_queue_wait_seconds", "Time a call waited for its account"
                                    " and a rate slot before it was signed or sent", ["method_class"],
                                    registry=r, buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.queued = 0  # private calls waiting for their account, read at scrape time
        queue_depth = Gauge("exmo_proxy_queued_calls", "Private calls waiting for their account", registry=r)
        queue_depth.set_function(lambda: self.queued)
        self._children: dict[tuple[Any, ...], Any] = {}
        build = Gauge("exmo_proxy_build_info", "Version of the running daemon", ["version"], registry=r)
        build.labels(version=__version__).set(1)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def upstream_time(self, method_class_: str, seconds: float) -> None:
        if self.enabled:
            self._child(self.upstream_latency, method_class_).observe(seconds)

    def queue_time(self, method_class_: str, seconds: float) -> None:
        if self.enabled:
            self._child(self.queue_wait, method_class_).observe(seconds)

    def nonce_resync(self) -> None:
        if self.enabled:
            self.nonce_resyncs.inc()

    def observe_request(self, path: str, account: str | None, method: str | None, status: int,
                        refused_by: str | None, exmo_error: str | None) -> None:
        if not self.enabled:
            return
        self._child(self.requests, _route(path), account or "-", method_class(method),
                    _OUTCOMES.get(status // 100) or f"{status // 100}xx").inc()
        if refused_by:
            self.refusals.labels(rule=refused_by).inc()
        if status == 429:
            self.rate_limited.inc()
        if exmo_error:
            self.exmo_errors.labels(code=exmo_error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


_OUTCOMES = {n: f"{n}xx" for n in range(1, 6)}


def _route(path: str) -> str:
    if path.startswith("/accounts/"):
        return "accounts_api"
    if path.startswith("/v1"):
        return "api"
    return path.strip("/") if path in ("/healthz", "/readyz", "/metrics") else "other"
