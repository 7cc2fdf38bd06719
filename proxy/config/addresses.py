"""Where the daemon listens and where it sends: listen addresses, the upstream URLs, socket modes.

Loopback is the line that matters (SPEC §6): the daemon listens on loopback or a unix socket unless
client tokens exist, and it sends plain http only to a loopback upstream (the simulator).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from proxy.config.checks import ConfigError

DEFAULT_UPSTREAM = "https://api.exmo.com"
DEFAULT_WS_UPSTREAM = "wss://ws-api.exmo.com:443"
DEFAULT_SOCKET_MODE = 0o660


@dataclass(frozen=True)
class Listen:
    """Where the daemon listens: host:port, or a unix socket path."""

    host: str = "127.0.0.1"
    port: int = 8080
    unix_path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Listen:
        if text.startswith("unix:"):
            if not text[5:].startswith("/"):
                raise ValueError("unix socket path must be absolute, e.g. unix:/run/exmo-proxy/proxy.sock")
            return cls(unix_path=text[5:])
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT (e.g. 127.0.0.1:8080) or unix:/path/to.sock")
        return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))

    @property
    def is_loopback(self) -> bool:
        return self.unix_path is not None or is_loopback_host(self.host)

    def url(self) -> str:
        if self.unix_path:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@functools.lru_cache(maxsize=256)  # asked on every request (web/guard.py); hosts are few
def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(value: Any, key: str, scheme: str, example: str, parts_named: str, article: str = "a") -> str:
    """A base URL with scheme `scheme` + "s" (TLS) anywhere, or plain `scheme` only to a loopback host."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string")
    url = value.rstrip("/")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(f"{key}: {url!r} has an invalid port") from None
    if parts.scheme not in (f"{scheme}s", scheme) or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not {article} {scheme}(s) URL like {example}")
    if parts.path or parts.query or parts.fragment or parts.username:
        raise ConfigError(f"{key}: give only {parts_named}, e.g. {example}")
    if parts.scheme == scheme and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{key}: {scheme}s is required unless the host is loopback")
    return url


def check_upstream(value: Any) -> str:
    return _base_url(value, "upstream", "http", DEFAULT_UPSTREAM, "scheme and host", article="an")


def check_ws_upstream(value: Any) -> str:
    """EXMO's WebSocket base URL (scheme, host, port): wss, or ws only to a loopback host (the simulator).
    The client's path (/v1/public, /v1/private, /v1/margin/private) is appended to it."""
    return _base_url(value, "ws_upstream", "ws", DEFAULT_WS_UPSTREAM, "scheme, host and port")


def socket_mode(value: Any, has_clients: bool) -> int:
    """Unix socket permissions; YAML reads 0660 as octal already, "0660" arrives as text."""
    if value is None:
        return DEFAULT_SOCKET_MODE
    try:
        mode = int(value, 8) if isinstance(value, str) else int(value)
    except ValueError:
        raise ConfigError("socket_mode: must be an octal mode like \"0660\"") from None
    if isinstance(value, bool) or not 0 <= mode <= 0o777 or mode & 0o600 != 0o600:
        raise ConfigError("socket_mode: must be an octal mode like \"0660\" that keeps owner read/write")
    if mode & 0o007 and not has_clients:
        raise ConfigError("socket_mode: giving every local user access needs clients (tokens) configured")
    return mode


