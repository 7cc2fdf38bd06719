"""Counters behind ``GET /_sim/stats``, so tests can see what really reached the exchange.

``executed`` counts private calls that passed the key, signature, rate and nonce checks (even if
the method then answered a business error such as 50052); ``client_ids`` counts those calls by
their ``client_id`` parameter; ``errors`` counts every error answer by code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._executed: Counter[str] = Counter()
        self._client_ids: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()

    def executed(self, method: str, params: Mapping[str, str]) -> None:
        self._executed[method] += 1
        if "client_id" in params:
            self._client_ids[params["client_id"]] += 1

    def error(self, code: str) -> None:
        self._errors[code] += 1

    def snapshot(self, last_nonce: Mapping[str, int]) -> dict[str, Any]:
        return {
            "executed": dict(self._executed),
            "client_ids": dict(self._client_ids),
            "errors": dict(self._errors),
            "last_nonce": dict(last_nonce),
        }
