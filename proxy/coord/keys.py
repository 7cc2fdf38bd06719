"""The names the daemon uses in Redis, and the refusal when Redis does not answer: what calls/ and
the CLI need of coord/ without importing redis-py (which only a daemon with `redis:` loads: ~7 MiB)."""

from __future__ import annotations

from proxy.exmo.refusals import Refusal

PREFIX = "exmo-proxy:"


class CoordinationUnavailable(Refusal):
    """Redis does not answer: nothing that needs the shared state is done (a signed call is not sent)."""

    status, slug = 503, "coordination_unavailable"

    def explain(self) -> str:
        return f"{self}; the call was not sent, retry when Redis answers (/readyz says when)"


def key_for(kid: str, what: str) -> str:
    """Keys of one API key share a hash tag, so they stay together on a Redis Cluster slot too."""
    return f"{PREFIX}{{{kid}}}:{what}"


HALT_KEY = PREFIX + "halt"
RATE_KEY, PAUSE_KEY = PREFIX + "rate:tat", PREFIX + "rate:pause"
ALIVE_KEY = PREFIX + "alive:"  # + a daemon's owner token: the health check's write
