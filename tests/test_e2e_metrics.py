"""GET /metrics: Prometheus text that prometheus-client's own parser reads, moving with traffic."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack, curl, curl_json

pytestmark = pytest.mark.slow


def samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = curl(f"{stack.base}/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(stack: Stack) -> None:
    """Requests, refusals, EXMO error codes and upstream latency are counted; build info is there."""
    before = samples(stack)
    curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")
    curl_json(f"{stack.base}/v1.1/withdraw_crypt", "-X", "POST", "-d", "amount=1")
    curl_json(f"{stack.base}/v1.1/order_cancel", "-X", "POST", "-d", "order_id=99999999")
    after = samples(stack)
    reads = dict(route="api", account="main", method_class="read", outcome="2xx")
    assert value(after, "exmo_proxy_requests_total", **reads) == value(before, "exmo_proxy_requests_total",
                                                                        **reads) + 1
    assert value(after, "exmo_proxy_refusals_total", rule="withdrawals_locked") == value(
        before, "exmo_proxy_refusals_total", rule="withdrawals_locked") + 1
    assert value(after, "exmo_proxy_exmo_errors_total", code="50173") >= 1
    assert value(after, "exmo_proxy_upstream_latency_seconds_count", method_class="read") >= 1
    assert any(name == "exmo_proxy_build_info" for name, _ in after)
