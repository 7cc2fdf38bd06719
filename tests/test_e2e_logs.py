"""Logs as operators read them: one access line per request with its fields; JSON lines parse."""

from __future__ import annotations

import concurrent.futures
import json

import pytest

from tests.conftest import PASSPHRASE, Stack, curl_json

pytestmark = pytest.mark.slow


def test_json_logs_parse_and_carry_the_access_fields(make_stack) -> None:  # type: ignore[no-untyped-def]
    """log_format: json → every log line is a JSON object; access lines have id, account, method,
    status, EXMO code and latency; none contains the secret or the passphrase."""
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text() + "log_format: json\n")
    stack.restart_daemon()
    curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", "-H", "X-Request-Id: log-test-1")
    curl_json(f"{stack.base}/v1.1/order_cancel", "-X", "POST", "-d", "order_id=424242")  # EXMO error
    lines = [ln for ln in stack.logs().splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]
    access = [r for r in records if r["logger"] == "proxy.access"]
    first = next(r for r in access if r["request_id"] == "log-test-1")
    assert (first["account"], first["method"], first["status"]) == ("main", "user_info", 200)
    assert first["latency_ms"] >= 0 and first["exmo_error"] is None
    cancel = next(r for r in access if r.get("method") == "order_cancel")
    assert cancel["exmo_error"] == "50173"
    for line in lines:
        assert stack.secret not in line and PASSPHRASE not in line


def test_access_log_and_metrics_can_be_switched_off(make_stack) -> None:  # type: ignore[no-untyped-def]
    """access_log: false → no access lines; metrics: false → /metrics is 404; calls still work and the
    audit log still records them (with audit.fsync: true, flushed per entry)."""
    stack: Stack = make_stack()
    stack.config.write_text(stack.config.read_text() + "access_log: false\nmetrics: false\n"
                            "audit: {fsync: true}\n")
    stack.restart_daemon()
    status, _ = curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", "-H", "X-Request-Id: quiet-1")
    assert status == 200
    status, body = curl_json(f"{stack.base}/metrics")
    assert (status, body["proxy_error"]) == (404, "metrics_off")
    assert "proxy.access" not in stack.logs() and "quiet-1" not in stack.logs()
    audit = (stack.tmp / "exmo-proxy-state" / "audit.jsonl").read_text()
    assert '"request_id":"quiet-1"' in audit


def test_access_lines_are_batched_but_complete(stack: Stack) -> None:
    """Twenty concurrent calls: every one gets its own access line (written once per loop pass)."""
    ids = [f"batch-{n}" for n in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda rid: curl_json(f"{stack.base}/v1.1/ticker", "-H",
                                                       f"X-Request-Id: {rid}")[0], ids))
    assert statuses == [200] * 20
    logs = stack.logs()
    for rid in ids:
        assert sum(f"request_id={rid} " in line for line in logs.splitlines()) == 1, rid
