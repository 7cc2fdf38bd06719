"""Prometheus metrics at GET /metrics, made with prometheus-client (SPEC §5).

One registry per app (not the library's global one), so every app — and every test — counts on its
own. Labels are bounded: routes and method classes are fixed sets, accounts and refusal rules come
from the config and the code, EXMO error codes are numbers EXMO sends (a handful in practice).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from proxy import __version__, policy

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
    def __init__(self) -> None:
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
        self.queue_depth = Gauge("exmo_proxy_queued_calls", "Private calls waiting for their account",
                                 registry=r)
        build = Gauge("exmo_proxy_build_info", "Version of the running daemon", ["version"], registry=r)
        build.labels(version=__version__).set(1)

    def observe_request(self, path: str, account: str | None, method: str | None, status: int,
                        refused_by: str | None, exmo_error: str | None) -> None:
        self.requests.labels(route=_route(path), account=account or "-", method_class=method_class(method),
                             outcome=f"{status // 100}xx").inc()
        if refused_by:
            self.refusals.labels(rule=refused_by).inc()
        if status == 429:
            self.rate_limited.inc()
        if exmo_error:
            self.exmo_errors.labels(code=exmo_error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route(path: str) -> str:
    if path.startswith("/accounts/"):
        return "accounts_api"
    if path.startswith("/v1"):
        return "api"
    return path.strip("/") if path in ("/healthz", "/readyz", "/metrics") else "other"
