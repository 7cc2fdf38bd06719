"""What an audit entry holds: `build_entry`, which takes only the fields it writes.

Nothing that holds the secret, `Sign`, a client token or the passphrase is a parameter, so none can
reach the file. Parameters named in `audit.redact` are written as "***", except where money leaves:
there the destination and amount are always kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from proxy.config.sections import AuditSettings
from proxy.exmo.methods import MONEY_OUT

REDACTED = "***"
# An audit of money leaving must show where it went and how much (exmo-api.md §2.2, §2.4).
MONEY_OUT_KEPT = frozenset({"address", "invoice", "code", "amount", "currency", "transport"})

_second: tuple[int, str] = (-1, "")  # the last second formatted: most entries share it with the one before


def _iso_utc(seconds: float) -> str:
    global _second
    whole, millis = divmod(int(seconds * 1000), 1000)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{millis:03d}Z"


def _redacted(method: str, params: Sequence[tuple[str, str]], redact: frozenset[str]) -> dict[str, str]:
    hidden = redact - MONEY_OUT_KEPT if method in MONEY_OUT else redact
    return {name: REDACTED if name in hidden else value for name, value in params}


def build_entry(*, request_id: str, client: str | None, account: str, method: str,
                params: Sequence[tuple[str, str]], nonce: int | None, http_status: int,
                exmo_result: bool | None, exmo_error_code: str | None, latency_ms: float, outcome: str,
                settings: AuditSettings, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """One audit entry, keys in file order. Only these fields exist, so it cannot carry a secret, `Sign`,
    a token or the passphrase. `params` become a dict: a repeated name keeps its last value."""
    return {
        "time": _iso_utc(now()), "request_id": request_id, "client": client, "account": account,
        "method": method, "params": _redacted(method, params, settings.redact), "nonce": nonce,
        "http_status": http_status, "exmo_result": exmo_result, "exmo_error_code": exmo_error_code,
        "latency_ms": round(latency_ms, 1), "outcome": outcome,
    }
