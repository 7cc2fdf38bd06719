"""Prometheus metrics at GET /metrics, rendered by prometheus-client (SPEC §5).

One registry per app (not the library's global one), so every app — and every test — counts on its
own. Labels are bounded: routes and method classes are fixed sets, accounts and refusal rules come
from the config and the code, EXMO error codes are numbers EXMO sends (a handful in practice).

Counting costs the hot path one dict or list increment: the daemon counts on its event loop only, so
the numbers live in plain Python containers, and a collector turns them into metric families when
/metrics is scraped. (prometheus-client's own Counter and Histogram take a lock and check their state
on every increment; with three or four per call that was measurable, bench/RESULTS.md.)
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from proxy import __version__
from proxy.exmo.methods import method_class

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUEST_LABELS = ("route", "account", "method_class", "outcome")
QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Histogram:
    """Observations by bucket (not yet cumulative) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # a bucket counts values <= its bound
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class Metrics:
    """The daemon's counters; `enabled=False` (config `metrics: false`) makes every count a no-op."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.queued = 0  # private calls waiting for their account
        self.requests: Counter[tuple[str, str, str, str]] = Counter()
        self.refusals: Counter[str] = Counter()
        self.exmo_errors: Counter[str] = Counter()
        self.rate_limited = 0
        self.nonce_resyncs = 0
        self.idempotent_replays = 0
        self.streams_open: Counter[str] = Counter()  # WebSocket streams by path kind (public, private, ...)
        self.streams_opened: Counter[str] = Counter()  # ever opened: reconnects show as opens after closes
        self.stream_frames: Counter[str] = Counter()  # frames relayed, by direction (to_exmo, to_client)
        self.stream_bytes: Counter[str] = Counter()
        self.stream_logins: Counter[str] = Counter()  # upstream logins by outcome
        self.stream_closes: Counter[str] = Counter()  # streams ended, by why
        self.paper_calls: Counter[str] = Counter()  # paper accounts' calls, answered from the ledger
        self.lease_waits = _Histogram(QUEUE_BUCKETS)  # Redis mode: waits for a key's lease
        self.redis_latency_s: float | None = None  # Redis mode: the last health check's round trip
        self.redis_errors = 0
        self.upstream_latency: dict[str, _Histogram] = {}
        self.queue_wait: dict[str, _Histogram] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))

    def configure(self, enabled: bool) -> None:
        """A reload switched metrics on or off (`metrics:` in the config); counts so far are kept."""
        self.enabled = enabled

    def upstream_time(self, method_class_: str, seconds: float) -> None:
        if self.enabled:
            _histogram(self.upstream_latency, method_class_, UPSTREAM_BUCKETS).observe(seconds)

    def queue_time(self, method_class_: str, seconds: float) -> None:
        if self.enabled:
            _histogram(self.queue_wait, method_class_, QUEUE_BUCKETS).observe(seconds)

    def idempotent_replay(self) -> None:
        if self.enabled:
            self.idempotent_replays += 1

    def nonce_resync(self) -> None:
        if self.enabled:
            self.nonce_resyncs += 1

    def observe_request(self, path: str, account: str | None, method: str | None, status: int,
                        refused_by: str | None, exmo_error: str | None) -> None:
        if not self.enabled:
            return
        self.requests[(_route(path), account or "-", method_class(method),
                       _OUTCOMES.get(status // 100) or f"{status // 100}xx")] += 1
        if refused_by:
            self.refusals[refused_by] += 1
        if status == 429:
            self.rate_limited += 1
        if exmo_error:
            self.exmo_errors[exmo_error] += 1

    def paper_call(self, method: str) -> None:
        if self.enabled:
            self.paper_calls[method] += 1

    def lease_wait(self, seconds: float) -> None:
        if self.enabled:
            self.lease_waits.observe(seconds)

    def redis_checked(self, latency_s: float | None, errors: int) -> None:
        self.redis_latency_s, self.redis_errors = latency_s, errors

    def stream_opened(self, kind: str, delta: int) -> None:
        self.streams_open[kind] += delta  # a gauge: kept even with metrics off, so it stays right
        if delta > 0 and self.enabled:
            self.streams_opened[kind] += delta

    def stream_login(self, outcome: str) -> None:
        if self.enabled:
            self.stream_logins[outcome] += 1

    def stream_closed(self, why: str) -> None:
        if self.enabled:
            self.stream_closes[why] += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _histogram(table: dict[str, _Histogram], label: str, bounds: tuple[float, ...]) -> _Histogram:
    found = table.get(label)
    if found is None:
        found = table[label] = _Histogram(bounds)
    return found


class _Collector(Collector):
    """What a scrape sees: the counts above as Prometheus metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        m = self.metrics
        requests = CounterMetricFamily("exmo_proxy_requests", "Requests answered, by route, account, method"
                                       " class and outcome", labels=list(REQUEST_LABELS))
        for labels, count in m.requests.items():
            requests.add_metric(list(labels), count)
        yield requests
        yield from _histograms("exmo_proxy_upstream_latency_seconds", "Time EXMO took to answer",
                               m.upstream_latency)
        yield _labelled("exmo_proxy_exmo_errors", "EXMO error codes seen in answers", "code", m.exmo_errors)
        yield CounterMetricFamily("exmo_proxy_nonce_resyncs", "40009 answers that moved a nonce up",
                                  value=m.nonce_resyncs)
        yield CounterMetricFamily("exmo_proxy_idempotent_replays", "Retries answered with the first call's"
                                  " answer (Idempotency-Key), never sent again", value=m.idempotent_replays)
        yield _labelled("exmo_proxy_refusals", "Calls refused before signing, by rule", "rule", m.refusals)
        yield CounterMetricFamily("exmo_proxy_rate_limited", "Calls refused with 429 (queue full or EXMO's"
                                  " pause)", value=m.rate_limited)
        yield from _histograms("exmo_proxy_queue_wait_seconds", "Time a call waited for its account and a"
                               " rate slot before it was signed or sent", m.queue_wait)
        yield GaugeMetricFamily("exmo_proxy_queued_calls", "Private calls waiting for their account",
                                value=m.queued)
        opened = GaugeMetricFamily("exmo_proxy_streams_open", "WebSocket streams open, by path kind",
                                   labels=["kind"])
        for kind, count in m.streams_open.items():
            opened.add_metric([kind], count)
        yield opened
        yield _labelled("exmo_proxy_streams_opened", "WebSocket streams opened, by path kind (a bot's"
                        " reconnect after a close is one more)", "kind", m.streams_opened)
        yield _labelled("exmo_proxy_stream_frames", "WebSocket frames relayed, by direction", "direction",
                        m.stream_frames)
        yield _labelled("exmo_proxy_stream_bytes", "WebSocket payload bytes relayed, by direction",
                        "direction", m.stream_bytes)
        yield _labelled("exmo_proxy_stream_logins", "Logins to EXMO's private WebSocket API, by outcome",
                        "outcome", m.stream_logins)
        yield _labelled("exmo_proxy_stream_closes", "WebSocket streams ended, by why (client, exmo,"
                        " maintenance, login_failed, unreachable, slow_client, shutdown, internal):"
                        " exmo and maintenance are the reconnects EXMO forced", "why",
                        m.stream_closes)
        yield _labelled("exmo_proxy_paper_calls", "Private calls of paper accounts, answered from the paper"
                        " ledger (never signed or sent), by method", "method", m.paper_calls)
        if m.redis_latency_s is not None or m.redis_errors:
            lease = HistogramMetricFamily("exmo_proxy_lease_wait_seconds", "Redis mode: time a signed call"
                                          " waited for its key's lease (another daemon's call)")
            lease.add_metric([], m.lease_waits.cumulative(), m.lease_waits.total)
            yield lease
            yield GaugeMetricFamily("exmo_proxy_redis_latency_seconds", "Redis mode: round trip of the"
                                    " last health check (NaN while Redis does not answer)",
                                    value=float("nan") if m.redis_latency_s is None else m.redis_latency_s)
            yield CounterMetricFamily("exmo_proxy_redis_errors", "Redis mode: Redis calls that failed or"
                                      " timed out", value=m.redis_errors)
        build = GaugeMetricFamily("exmo_proxy_build_info", "Version of the running daemon",
                                  labels=["version"])
        build.add_metric([__version__], 1)
        yield build


def _labelled(name: str, documentation: str, label: str, counts: Counter[str]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def _histograms(name: str, documentation: str,
                table: dict[str, _Histogram]) -> Iterator[HistogramMetricFamily]:
    family = HistogramMetricFamily(name, documentation, labels=["method_class"])
    for label, histogram in table.items():
        family.add_metric([label], histogram.cumulative(), histogram.total)
    yield family


_OUTCOMES = {n: f"{n}xx" for n in range(1, 6)}


def _route(path: str) -> str:
    if path.startswith("/accounts/"):
        return "accounts_api"
    if path.startswith("/v1"):
        return "api"
    return path.strip("/") if path in ("/healthz", "/readyz", "/metrics") else "other"
