"""What every stream shares: who opened it, the daemon's parts it uses, and how it ends."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.audit.trail import AuditTrail
from proxy.calls.nonce import NonceBook
from proxy.config.accounts import Account
from proxy.telemetry.metrics import Metrics


@dataclass(frozen=True)
class Who:
    """Who opened a stream, and where to."""

    request_id: str
    client: str | None  # the client token's name; None without clients
    account: Account | None  # None on /v1/public
    path: str  # /v1/public, /v1/private or /v1/margin/private
    kind: str  # public, private, margin


@dataclass
class Context:
    """What every stream shares: the daemon's parts and the settings in force (relay.py keeps it)."""

    nonces: NonceBook
    audit: AuditTrail
    metrics: Metrics
    max_wait_s: float = 10.0  # for the key's turn before the login
    upstream_timeout_s: float = 15.0  # for EXMO's answer to the login
    connect_timeout_s: float = 5.0  # for the connection and handshake to EXMO
    send_timeout_s: float = 10.0  # a client that leaves a frame unread this long is cut off


class Ended(Exception):
    """The stream ends here: the client's socket is closed with `code` and `text` as the reason."""

    def __init__(self, code: int, text: str, why: str) -> None:
        super().__init__(text)
        self.code, self.text, self.why = code, text, why
