"""The counting behind /metrics: buckets, labels, the off switch, and what a scrape parses."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from proxy.telemetry.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode()) for s in family.samples}


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    metrics = Metrics()
    for seconds in (0.025, 0.03, 0.1, 99):
        metrics.upstream_time("trade", seconds)
    found = _samples(metrics)

    def bucket(le: str) -> float:
        return found[("exmo_proxy_upstream_latency_seconds_bucket", (("le", le), ("method_class", "trade")))]

    assert (bucket("0.025"), bucket("0.05"), bucket("0.1"), bucket("30.0"), bucket("+Inf")) == (1, 2, 3, 3, 4)
    assert found[("exmo_proxy_upstream_latency_seconds_count", (("method_class", "trade"),))] == 4
    assert found[("exmo_proxy_upstream_latency_seconds_sum", (("method_class", "trade"),))] == 99.155


def test_requests_refusals_errors_and_queue_depth() -> None:
    metrics = Metrics()
    metrics.observe_request("/accounts/a/v1.1/order_create", "a", "order_create", 403, "halted", None)
    metrics.observe_request("/v1.1/order_create", "a", "order_create", 429, None, None)
    metrics.observe_request("/v1.1/order_cancel", "a", "order_cancel", 200, None, "50173")
    metrics.nonce_resync()
    metrics.queued = 7
    found = _samples(metrics)
    labels = (("account", "a"), ("method_class", "trade"), ("outcome", "4xx"), ("route", "accounts_api"))
    assert found[("exmo_proxy_requests_total", labels)] == 1
    assert found[("exmo_proxy_refusals_total", (("rule", "halted"),))] == 1
    assert found[("exmo_proxy_rate_limited_total", ())] == 1
    assert found[("exmo_proxy_exmo_errors_total", (("code", "50173"),))] == 1
    assert found[("exmo_proxy_nonce_resyncs_total", ())] == 1
    assert found[("exmo_proxy_queued_calls", ())] == 7


def test_switched_off_counts_nothing() -> None:
    metrics = Metrics(enabled=False)
    metrics.observe_request("/v1.1/user_info", "a", "user_info", 200, None, None)
    metrics.upstream_time("read", 0.1)
    metrics.queue_time("read", 0.1)
    metrics.nonce_resync()
    assert not metrics.requests and not metrics.upstream_latency and not metrics.queue_wait
    assert metrics.nonce_resyncs == 0
