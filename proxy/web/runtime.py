"""The running daemon's parts, and how a reloaded config reaches them (SIGHUP).

`Runtime.apply` only orders the calls: which settings need a restart is read off the config model
(config/model.py), and each part takes its new settings through a method of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from proxy.audit.trail import AuditTrail
from proxy.calls.dispatch import Dispatcher
from proxy.calls.idempotency import Idempotency
from proxy.calls.nonce import NonceBook
from proxy.calls.ratelimit import RateLimiter
from proxy.config.model import Config, keep_restart_only
from proxy.paper.desk import PaperDesk
from proxy.streams.relay import Relay
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.web.keys import Live

if TYPE_CHECKING:
    from proxy.coord.client import Coordinator  # loaded only in Redis mode (redis-py: ~7 MiB)


@dataclass
class Runtime:
    live: Live
    upstream: Upstream
    limiter: RateLimiter
    nonces: NonceBook
    dispatcher: Dispatcher
    audit: AuditTrail
    metrics: Metrics
    idempotency: Idempotency
    relay: Relay
    paper: PaperDesk  # paper trading (SPEC §11): paper accounts' private calls
    coordinator: Coordinator | None = None  # Redis mode (SPEC §10)

    @property
    def config(self) -> Config:
        return self.live.config

    def apply(self, new: Config) -> list[str]:
        """Take a reloaded config; returns the settings that need a restart and were kept."""
        new, kept = keep_restart_only(self.live.config, new)
        self.nonces.load_keys(a.key for a in new.accounts.values())  # a bad state file refuses it here
        self.nonces.write_ahead()  # a new key's first ceiling
        self.upstream.configure(new.upstream, new.limits)
        self.dispatcher.reconfigure(new.limits, new.cache)
        self.metrics.configure(new.features.metrics)
        self.audit.reconfigure(new.audit)
        self.idempotency.reconfigure(new.idempotency_ttl_s)
        self.relay.configure(new.streams, new.limits, new.ws_upstream)
        self.live.config = new  # the swap: every request from here on sees the new config
        return kept


RUNTIME = web.AppKey("runtime", Runtime)
