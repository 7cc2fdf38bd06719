"""Logs as operators read them: one access line per request with its fields; JSON lines parse."""

from __future__ import annotations

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
