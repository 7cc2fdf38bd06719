"""Browser and DNS-rebinding protection (SPEC §6).

A daemon on 127.0.0.1 that signs anything is reachable from every web page the user opens: a page
can POST a form (or a `no-cors` fetch) to it without any CORS preflight, and with DNS rebinding it
can even read answers. Browsers add `Origin` to cross-site POSTs and `Sec-Fetch-Site` to every
request; bots send neither and address the daemon by a loopback name. So those signals are refused
before anything else runs. (`Sec-Fetch-Mode` is not one of them: Node's built-in fetch sends
`sec-fetch-mode: cors` too.)
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from proxy.config.addresses import Listen
from proxy.policy.rules import PolicyDenied

BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site")


def host_name(host_header: str) -> str:
    """The name part of a Host header: `[::1]:8080` → `::1`, `localhost:8080` → `localhost`."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    name, sep, port = host_header.rpartition(":")
    return name if sep and port.isdigit() else host_header


@functools.lru_cache(maxsize=256)  # every request names a host; a bot uses one or two
def is_local_name(name: str, listen: Listen) -> bool:
    name = name.lower().rstrip(".")
    if name == "localhost" or name == listen.host.lower():
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def named_hosts(headers: Mapping[str, str], target: str) -> list[tuple[str | None, str]]:
    """The hosts a request names, and where. An absolute-form target names its authority (RFC 9112
    §3.2.2: `POST http://other.host/v1.1/...` is a request to other.host); its Host header is checked
    too, though the RFC says to ignore it: a foreign one is refused either way."""
    named: list[tuple[str | None, str]] = [(headers.get("Host"), "Host")]
    if not target.startswith("/"):
        named.append((urlsplit(target).netloc or target, "the request target's host"))
    return named


def check(headers: Mapping[str, str], listen: Listen, target: str = "/") -> None:
    """Raise PolicyDenied for a request that comes from a browser or names a foreign host; `target` is
    the request-target as sent (a path, or an absolute URL)."""
    for name in BROWSER_HEADERS:
        if name in headers:
            raise PolicyDenied(
                "browser_refused",
                f"requests with an {name} header come from a web browser and are refused, so that no"
                " web page can trade through this daemon; bots must not send it",
            )
    # Rebinding matters for a loopback listener that trusts whoever reaches it; a unix socket has
    # no host name, and a non-loopback listener (only allowed with client tokens) is addressed by
    # the machine's own names while every request must carry a token a web page does not have.
    if listen.unix_path is not None or not listen.is_loopback:
        return
    for host, where in named_hosts(headers, target):
        if host and not is_local_name(host_name(host), listen):
            raise PolicyDenied(
                "host_refused",
                f"{where} {host_name(host)!r} is not a local name; address the daemon as 127.0.0.1 or"
                " localhost (a foreign Host is how DNS rebinding reaches a local daemon)",
            )
