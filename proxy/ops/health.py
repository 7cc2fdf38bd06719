"""`exmo-proxy health`: GET /healthz on a running daemon, over TCP or its unix socket.

Docker's HEALTHCHECK runs it inside the image, which has no curl; it uses the standard library only,
so it starts fast and needs nothing the daemon does not.
"""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def health_check(target: str, timeout: float = 3.0) -> tuple[bool, str]:
    """GET /healthz on `target` (an http URL or unix:/path); (ok, what happened)."""
    if target.startswith("unix:"):
        conn: http.client.HTTPConnection = _UnixHTTPConnection(target[5:], timeout)
        path = "/healthz"
    else:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            return False, f"not an http:// URL: {target}"
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        path = parts.path if parts.path not in ("", "/") else "/healthz"
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{target}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}"
    finally:
        conn.close()
    return status == 200, f"{target}: HTTP {status}"
