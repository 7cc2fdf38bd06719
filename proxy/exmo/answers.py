"""Reading EXMO's answers: the two errors the daemon acts on, 40009 (nonce) and rate limits, and the
outcome of a call (`result` and error code) that the audit log records.

EXMO reports errors with HTTP 200 and `{"result": false, "error": "..."}` (exmo-api.md §4.1). For the
two it acts on, the body is parsed only when a cheap byte search says it might be one of them, so
ordinary answers cost nothing extra.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

# exmo-api.md §3: `40009: The nonce parameter is less or equal than what was used before "N"`
_NONCE_ERROR = re.compile(r"^(?:Error )?40009:")
_USED_BEFORE = re.compile(r'"(\d{1,19})"')
# exmo-api.md §5: `Error 40034: Access is denied, rate limit is exceeded` and
# `API rate limit exceeded for 99.33.55.224. Retry after 60 sec.`
_RATE_ERROR = re.compile(r"^(?:Error )?40034:|rate limit (?:is )?exceeded", re.IGNORECASE)
_RETRY_AFTER = re.compile(r"Retry after (\d{1,5}) sec", re.IGNORECASE)
DEFAULT_PAUSE_S = 60.0  # 40034 names no duration; the other form says 60 s, so wait as long
MAX_PAUSE_S = 300.0  # a garbled "Retry after 99999 sec." must not stop trading for a day
# exmo-api.md §4.1 and §10: "Error 50052: Insufficient funds" and "40009: The nonce ..." both occur.
_ERROR_CODE = re.compile(r"^(?:Error )?(\d+):")


class Answer(Protocol):
    """What these functions read of an HTTP answer (upstream's UpstreamResponse is one)."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...


def _error_text(resp: Answer, marker: bytes) -> str | None:
    if resp.status != 200 or marker not in resp.body.lower():
        return None
    try:
        doc: Any = json.loads(resp.body)
    except (ValueError, RecursionError):
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, str) else None


def nonce_rejection(resp: Answer) -> int | None:
    """If EXMO rejected the nonce (40009), the highest nonce it names (0 if none); else None."""
    error = _error_text(resp, b"40009")
    return None if error is None else nonce_rejected_text(None, error)


def nonce_rejected_text(code: int | None, message: str) -> int | None:
    """The same for an error frame of the WebSocket API (code, message): the nonce EXMO names, 0 if
    none, or None when it is not a nonce rejection."""
    if code != 40009 and not _NONCE_ERROR.match(message):
        return None
    found = _USED_BEFORE.search(message)
    return int(found.group(1)) if found else 0


def rate_limit_pause(resp: Answer) -> float | None:
    """Seconds EXMO asks us to stop sending, if this answer is one of its rate-limit errors."""
    if resp.status == 429:  # HTTP-level limiting (EXMO's edge, a CDN): back off the same way
        return DEFAULT_PAUSE_S
    error = _error_text(resp, b"rate limit") or _error_text(resp, b"40034")
    if error is None or not _RATE_ERROR.search(error):
        return None
    found = _RETRY_AFTER.search(error)
    return min(float(found.group(1)), MAX_PAUSE_S) if found else DEFAULT_PAUSE_S


NOT_JSON: Any = object()  # what `parse` gives for a body that is not JSON


def parse(body: bytes) -> Any:
    """The body as JSON, or NOT_JSON; never raises."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return NOT_JSON


def exmo_outcome(status: int, body: bytes) -> tuple[bool | None, str | None]:
    """EXMO's `result` and error code in an answer (exmo-api.md §4.1); (None, None) if it says neither.

    Never raises. `status` is recorded by the caller as http_status; EXMO sends its own errors with 200,
    so only the body decides here, whatever the status.
    """
    return outcome_of(parse(body))


def outcome_of(doc: Any) -> tuple[bool | None, str | None]:
    """`exmo_outcome` of an answer already parsed (`parse`)."""
    if not isinstance(doc, dict):  # user_cancelled_orders answers an array (§4.1)
        return None, None
    result = doc.get("result") if isinstance(doc.get("result"), bool) else None
    error, failed = doc.get("error"), (False if result is None else result)
    if isinstance(error, str) and error:  # an error text without `result` is still a failure
        found = _ERROR_CODE.match(error)
        return failed, found.group(1) if found else None
    if isinstance(error, dict):  # margin: {"error": {"code": "140434", "msg": ...}}; §4.3 also shows an int
        code = error.get("code")
        return failed, str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
    if doc.get("s") == "error":  # candles_history: {"s": "error", "errmsg": ...}
        return False, None
    return result, None
