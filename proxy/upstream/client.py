"""Forwarding to EXMO: one pool of connections, verified TLS, no redirects, headers from an allowlist.

Failures are classified by whether the request could have reached EXMO. Before the connection is
made (refused, DNS, TLS) nothing was sent and the client may retry. After it is sent (a timeout, a
reset mid-answer) the outcome is unknown: a private call is never resent, and the client is told
to check its orders before trying again (SPEC §7). Only EXMO's JSON counts as an answer: anything
else is an `upstream_invalid` error too (`require_api_answer`). The HTTP client is wire.py.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy import __version__
from proxy.config.sections import Limits
from proxy.exmo.answers import parse
from proxy.exmo.refusals import Refusal
from proxy.upstream.wire import WireClient, WireError

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = f"exmo-signing-proxy/{__version__}"
UNKNOWN_HINT = (
    "it may or may not have been executed; check user_open_orders / user_trades (or your client_id) "
    "before sending it again"
)


@dataclass(frozen=True)
class UpstreamResponse:
    """An HTTP answer from the upstream."""

    status: int
    body: bytes
    content_type: str

    @functools.cached_property
    def doc(self) -> Any:
        """The body as JSON (NOT_JSON if it is not), parsed on first use and kept: a signed call's
        answer is checked (`require_api_answer`) and audited (EXMO's result) from one parse."""
        return parse(self.body)


class UpstreamError(Refusal):
    """EXMO could not be reached or answered badly; `status` is 502 or 504, `sent` says whether the
    request may have reached EXMO (then its outcome is unknown)."""

    def __init__(self, status: int, slug: str, message: str, *, sent: bool) -> None:
        super().__init__(message, status=status, slug=slug)
        self.sent = sent


class Upstream:
    """The only way out of the daemon: requests go to `base_url` and nowhere else."""

    def __init__(self, base_url: str, limits: Limits) -> None:
        self._client: WireClient | None = None
        self.configure(base_url, limits)

    @property
    def timeout_s(self) -> float:
        """How long a call may wait for EXMO's answer before it is abandoned (limits.upstream_timeout_s)."""
        return self._timeout_s

    def configure(self, base_url: str, limits: Limits) -> None:
        """Where to send and how long to wait; a reload may change both for the next request."""
        self.base_url = base_url
        self._timeout_s = limits.upstream_timeout_s
        self._connect_timeout_s = limits.connect_timeout_s
        if self._client is not None:
            self._client.set_origin(base_url)

    async def start(self) -> None:
        self._client = WireClient(self.base_url, limit=64, idle_s=10, max_bytes=MAX_RESPONSE_BYTES,
                                  user_agent=USER_AGENT)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def send(
        self, http_method: str, path: str, *, body: bytes | None = None, query: str = "",
        headers: Mapping[str, str] | None = None, private: bool = True,
    ) -> UpstreamResponse:
        """Send one request; UpstreamError says whether it may have been executed."""
        assert self._client is not None, "Upstream.start() was not awaited"
        target = f"{path}?{query}" if query else path
        try:
            answer = await self._client.request(http_method, target, headers or {}, body,
                                                timeout_s=self._timeout_s,
                                                connect_timeout_s=self._connect_timeout_s)
        except WireError as exc:
            raise self._classify(exc, private) from None
        return UpstreamResponse(answer.status, answer.body, answer.headers.get("content-type", ""))

    def _classify(self, exc: WireError, private: bool) -> UpstreamError:
        cause = exc.cause
        if not exc.sent:
            if isinstance(cause, ssl.SSLCertVerificationError):
                return self._not_sent(f"TLS certificate verification failed: {cause.verify_message}")
            if isinstance(cause, ssl.SSLError):
                return self._not_sent("the TLS handshake failed")
            return self._not_sent(f"cannot connect: {_reason(exc)}")
        if exc.timeout:
            return self._unknown(504, "upstream_timeout", f"no answer within {self._timeout_s:g}s", private)
        return self._unknown(502, "upstream_failed", f"connection failed: {_reason(exc)}", private)

    def _not_sent(self, what: str) -> UpstreamError:
        return UpstreamError(
            502, "upstream_unreachable",
            f"upstream {self.base_url}: {what}; the request was not sent, so it is safe to retry", sent=False,
        )

    def _unknown(self, status: int, slug: str, what: str, private: bool) -> UpstreamError:
        advice = f"outcome unknown: {UNKNOWN_HINT}" if private else "retry the request"
        return UpstreamError(status, slug, f"upstream {self.base_url}: {what}; {advice}", sent=True)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def require_api_answer(resp: UpstreamResponse, base_url: str, private: bool) -> UpstreamResponse:
    """EXMO's API answers a JSON object or array (errors too, with HTTP 200). Anything else — an HTML
    error page from a proxy in front of it, a redirect, an empty body, JSON cut short or followed by
    garbage — is not an answer a bot can read: it becomes a 502 that says what came back and, for a
    signed call, that its outcome is unknown."""
    # A public answer is parsed to be checked, not kept parsed: a cached order book would cost its
    # size many times over in Python objects (calls/shared_reads.py bounds only the bytes).
    doc = (resp.doc if private else parse(resp.body)) if resp.status < 300 else None
    if isinstance(doc, dict | list):
        return resp
    what = f"HTTP {resp.status}" + (f" ({resp.content_type.split(';')[0]})" if resp.content_type else "")
    if 300 <= resp.status < 400:
        what += ", a redirect (not followed)"
    elif resp.status < 300 and resp.body.lstrip()[:1] in (b"{", b"["):
        what += f" with {len(resp.body)} bytes that are not valid JSON (cut short or damaged)"
    advice = f"outcome unknown: {UNKNOWN_HINT}" if private else "retry the request"
    raise UpstreamError(502, "upstream_invalid", f"upstream {base_url} answered {what} instead of EXMO's"
                                                 f" JSON; {advice}", sent=True)
