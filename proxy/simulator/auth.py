"""The checks a signed call must pass: ``Sign``, nonce order and the rate window.

Pure where possible: the rate window takes an injected clock, nothing here does I/O.
The order in which the checks run is the pipeline's business (``pipeline.py``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Callable, Iterable

from proxy.exchange import errors


def expected_sign(secret: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA512 of the raw body, keyed with the whole secret (exmo-api.md §1.3)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()


def signature_ok(secret: str, body: bytes, sign: str | None) -> bool:
    """Constant-time compare; only lower-case hex is accepted (upper-case is [UNCONFIRMED], §1.3)."""
    if sign is None:
        return False
    given = sign.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected_sign(secret, body).encode("ascii"), given)


def parse_nonce(raw: str | None) -> int | None:
    """A nonce is a positive decimal integer (§3); anything else is treated as no nonce."""
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if value > 0 else None


class NonceBook:
    """Highest accepted nonce per API key. Order is by processing, not issue time (§3, ccxt#24065)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def accept(self, key: str, raw: str | None) -> None:
        """Record ``raw`` as the key's new last nonce, or raise 40009 and record nothing."""
        last = self._last.get(key, 0)
        nonce = parse_nonce(raw)
        if nonce is None or nonce <= last:
            raise errors.nonce_too_low(last)
        self._last[key] = nonce

    def snapshot(self) -> dict[str, int]:
        return dict(self._last)


class RateWindow:
    """Sliding one-second window per bucket (``ip:…`` and ``key:…``), limit from exmo-api.md §5.

    Every admission attempt is recorded, including the ones that get refused: EXMO tells
    clients to "Retry after 60 sec." (§5), so a client that keeps hammering should stay refused
    rather than get every eleventh call through.
    """

    WINDOW = 1.0

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def admit(self, buckets: Iterable[str]) -> bool:
        """Record one hit in every bucket; True if all of them are within the limit."""
        if self._limit <= 0:
            return True
        now = self._clock()
        counts = [self._hit(bucket, now) for bucket in buckets]
        return all(count <= self._limit for count in counts)

    def _hit(self, bucket: str, now: float) -> int:
        hits = self._hits.setdefault(bucket, deque())
        while hits and hits[0] <= now - self.WINDOW:
            hits.popleft()
        hits.append(now)
        return len(hits)
