"""GET /metrics: Prometheus text that prometheus-client's own parser reads, moving with traffic."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack, cli, curl, curl_json, free_port

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
    assert value(after, "exmo_proxy_queue_wait_seconds_count", method_class="read") >= 1


def test_management_listener_serves_probes_and_metrics_only(make_stack) -> None:  # type: ignore[no-untyped-def]
    """management_listen answers /healthz, /readyz, /metrics and nothing that could sign."""
    stack: Stack = make_stack()
    port = free_port()
    stack.config.write_text(stack.config.read_text() + f"management_listen: 127.0.0.1:{port}\n")
    stack.restart_daemon()
    mgmt = f"http://127.0.0.1:{port}"
    assert curl_json(f"{mgmt}/healthz")[0] == 200
    assert curl_json(f"{mgmt}/readyz")[0] == 200
    assert b"exmo_proxy_build_info" in curl(f"{mgmt}/metrics")[1]
    assert curl(f"{mgmt}/v1.1/user_info", "-X", "POST")[0] == 404
    assert stack.sim_stats()["executed"] == {}
    wide = stack.config.read_text().replace(f"management_listen: 127.0.0.1:{port}",
                                            "management_listen: 0.0.0.0:9464")
    stack.config.write_text(wide)
    checked = cli("check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file))
    assert checked.returncode == 0, checked.stderr  # probes may come from outside; nothing there signs
