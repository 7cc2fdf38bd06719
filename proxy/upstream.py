"""Forwarding to EXMO: one pooled session, verified TLS, no redirects, headers from an allowlist.

Failures are classified by whether the request could have reached EXMO. Before the connection is
made (refused, DNS, TLS) nothing was sent and the client may retry. After it is sent (a timeout, a
reset mid-answer) the outcome is unknown: a private call is never resent, and the client is told
to check its orders before trying again (SPEC §7).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from proxy import __version__
from proxy.config import Limits

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = f"exmo-signing-proxy/{__version__}"
UNKNOWN_HINT = (
    "it may or may not have been executed; check user_open_orders / user_trades (or your client_id) "
    "before sending it again"
)


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    body: bytes
    content_type: str


class UpstreamError(Exception):
    """EXMO could not be reached or answered badly; `status` is 502 or 504."""

    def __init__(self, status: int, slug: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.status = status
        self.slug = slug
        self.sent = sent


class Upstream:
    """The only way out of the daemon: requests go to `base_url` and nowhere else."""

    def __init__(self, base_url: str, limits: Limits) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.configure(base_url, limits)

    def configure(self, base_url: str, limits: Limits) -> None:
        """Where to send and how long to wait; a reload may change both for the next request."""
        self.base_url = base_url
        self._timeout = aiohttp.ClientTimeout(
            total=limits.upstream_timeout_s, sock_connect=limits.connect_timeout_s
        )
        self._timeout_s = limits.upstream_timeout_s

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=10, ttl_dns_cache=60)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, trust_env=False,
            headers={"User-Agent": USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self, http_method: str, path: str, *, body: bytes | None = None, query: str = "",
        headers: Mapping[str, str] | None = None, private: bool = True,
    ) -> UpstreamResponse:
        """Send one request; UpstreamError says whether it may have been executed."""
        assert self._session is not None, "Upstream.start() was not awaited"
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            async with self._session.request(
                http_method, url, data=body, headers=dict(headers or {}), allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                payload = await self._read(resp)
                return UpstreamResponse(resp.status, payload, resp.headers.get("Content-Type", ""))
        except aiohttp.ClientConnectorCertificateError as exc:
            raise self._not_sent(f"TLS certificate verification failed: {exc.certificate_error}") from None
        except aiohttp.ClientSSLError:
            raise self._not_sent("the TLS handshake failed") from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise self._not_sent(f"cannot connect: {_reason(exc)}") from None
        except TimeoutError:
            raise self._unknown(
                504, "upstream_timeout", f"no answer within {self._timeout_s:g}s", private
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unknown(
                502, "upstream_failed", f"connection failed: {_reason(exc)}", private
            ) from None

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise aiohttp.ClientPayloadError("response larger than 16 MiB")
            chunks.append(chunk)
        return b"".join(chunks)

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
