"""The frames the daemon reads or writes itself; every other frame passes through unchanged.

On a private stream the login is the daemon's: the client's own `login` frame (a placeholder key and
any sign, as ccxt.pro sends it) is answered `logged_in` with the client's `id` and never forwarded,
and the daemon logs in upstream with the account's key (exmo-api.md §6.1). Only text that names
"login" is parsed, so the frames a client sends all day cost one substring test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy.exmo.signing import sign_ws_login

LOGIN_ID = 1  # the id of the daemon's own login upstream; its answer is never relayed
REASON_BYTES = 123  # a close frame carries at most 125 bytes: the 2-byte code and the reason


def _compact(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def client_login(text: str) -> tuple[bool, Any]:
    """Whether a client frame is a `login`, and its `id` (None if it has none)."""
    if '"login"' not in text:
        return False, None
    try:
        frame = json.loads(text)
    except ValueError:
        return False, None
    if isinstance(frame, dict) and frame.get("method") == "login":
        return True, frame.get("id")
    return False, None


def logged_in(request_id: Any, now_ms: int) -> str:
    """The answer to a client's login: EXMO's event name, the client's own id."""
    frame: dict[str, Any] = {"ts": now_ms, "event": "logged_in"}
    if request_id is not None:
        frame["id"] = request_id
    return _compact(frame)


def login(api_key: str, secret: bytes, nonce: int) -> str:
    """The daemon's login upstream: sign = base64(HMAC-SHA512(secret, api_key + nonce)) (§6.1)."""
    return _compact({"id": LOGIN_ID, "method": "login", "api_key": api_key,
                     "sign": sign_ws_login(secret, api_key, nonce), "nonce": nonce})


@dataclass(frozen=True)
class LoginAnswer:
    ok: bool
    code: int | None = None
    message: str = ""


def login_answer(text: str) -> LoginAnswer | None:
    """EXMO's answer to the daemon's login (`logged_in` or `error`, with LOGIN_ID or no id: what EXMO
    puts in them is unconfirmed, §6.1, and the client's frames wait until the login is done, so an
    error now answers the login); None for any other frame (the greeting), which the client gets."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if not isinstance(frame, dict):
        return None
    event = frame.get("event")
    if event == "logged_in" and frame.get("id") in (LOGIN_ID, None):
        return LoginAnswer(True)
    if event == "error" and frame.get("id") in (LOGIN_ID, None):  # nothing else was sent yet: it is ours
        code = frame.get("code")
        message = frame.get("message") or frame.get("error") or "no message"
        return LoginAnswer(False, code if isinstance(code, int) and not isinstance(code, bool) else None,
                           str(message))
    return None


def is_maintenance(text: str) -> bool:
    """EXMO's notice before it closes every socket for maintenance (§6.2: info, code 2)."""
    if '"info"' not in text:
        return False
    try:
        frame = json.loads(text)
    except ValueError:
        return False
    return isinstance(frame, dict) and frame.get("event") == "info" and frame.get("code") == 2


def reason(text: str) -> str:
    """`text` cut to what a close frame can carry, on a character boundary."""
    return text.encode()[:REASON_BYTES].decode("utf-8", "ignore")
