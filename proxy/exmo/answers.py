"""Reading EXMO's answers for the two errors the daemon acts on: 40009 (nonce) and rate limits.

EXMO reports both with HTTP 200 and `{"result": false, "error": "..."}` (exmo-api.md §4.1). The body
is parsed only when a cheap byte search says it might be one of them, so ordinary answers cost
nothing extra.
"""

from __future__ import annotations

import json
import re
from typing import Any

from proxy.upstream import UNKNOWN_HINT, UpstreamError, UpstreamResponse

# exmo-api.md §3: `40009: The nonce parameter is less or equal than what was used before "N"`
_NONCE_ERROR = re.compile(r"^(?:Error )?40009:")
_USED_BEFORE = re.compile(r'"(\d{1,19})"')
# exmo-api.md §5: `Error 40034: Access is denied, rate limit is exceeded` and
# `API rate limit exceeded for 99.33.55.224. Retry after 60 sec.`
_RATE_ERROR = re.compile(r"^(?:Error )?40034:|rate limit (?:is )?exceeded", re.IGNORECASE)
_RETRY_AFTER = re.compile(r"Retry after (\d{1,5}) sec", re.IGNORECASE)
DEFAULT_PAUSE_S = 60.0  # 40034 names no duration; the other form says 60 s, so wait as long
MAX_PAUSE_S = 300.0  # a garbled "Retry after 99999 sec." must not stop trading for a day


def _error_text(resp: UpstreamResponse, marker: bytes) -> str | None:
    if resp.status != 200 or marker not in resp.body.lower():
        return None
    try:
        doc: Any = json.loads(resp.body)
    except (ValueError, RecursionError):
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, str) else None


def nonce_rejection(resp: UpstreamResponse) -> int | None:
    """If EXMO rejected the nonce (40009), the highest nonce it names (0 if none); else None."""
    error = _error_text(resp, b"40009")
    if error is None or not _NONCE_ERROR.match(error):
        return None
    found = _USED_BEFORE.search(error)
    return int(found.group(1)) if found else 0


def rate_limit_pause(resp: UpstreamResponse) -> float | None:
    """Seconds EXMO asks us to stop sending, if this answer is one of its rate-limit errors."""
    if resp.status == 429:  # HTTP-level limiting (EXMO's edge, a CDN): back off the same way
        return DEFAULT_PAUSE_S
    error = _error_text(resp, b"rate limit") or _error_text(resp, b"40034")
    if error is None or not _RATE_ERROR.search(error):
        return None
    found = _RETRY_AFTER.search(error)
    return min(float(found.group(1)), MAX_PAUSE_S) if found else DEFAULT_PAUSE_S


def require_api_answer(resp: UpstreamResponse, base_url: str, private: bool) -> UpstreamResponse:
    """EXMO's API answers JSON (errors too, with HTTP 200). Anything else — an HTML error page from a
    proxy in front of it, a redirect, an empty body — is not an answer a bot can read: it becomes a
    502 that says what came back and, for a signed call, that its outcome is unknown."""
    start = resp.body.lstrip()[:1]
    if resp.status < 300 and start in (b"{", b"["):
        return resp
    what = f"HTTP {resp.status}" + (f" ({resp.content_type.split(';')[0]})" if resp.content_type else "")
    if 300 <= resp.status < 400:
        what += ", a redirect (not followed)"
    advice = f"outcome unknown: {UNKNOWN_HINT}" if private else "retry the request"
    raise UpstreamError(502, "upstream_invalid", f"upstream {base_url} answered {what} instead of EXMO's"
                                                 f" JSON; {advice}", sent=True)
