"""Browser / DNS-rebinding guard: pure checks on headers (proxy/web/guard.py)."""

from __future__ import annotations

import pytest

from proxy.config.addresses import Listen
from proxy.policy.rules import PolicyDenied
from proxy.web import guard

LISTEN = Listen.parse("127.0.0.1:8080")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        pytest.param("localhost:8080", "localhost", id="name-port"),
        pytest.param("localhost", "localhost", id="name"),
        pytest.param("[::1]:8080", "::1", id="ipv6-port"),
        pytest.param("[::1]", "::1", id="ipv6"),
        pytest.param("127.0.0.1:80", "127.0.0.1", id="ipv4-port"),
        pytest.param("evil.example:http", "evil.example:http", id="junk-port-kept"),
    ],
)
def test_host_name(header: str, name: str) -> None:
    """The name part of a Host header is what is checked, with the port removed."""
    assert guard.host_name(header) == name


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        pytest.param({"Origin": "null"}, "browser_refused", id="origin-null"),
        pytest.param({"Origin": "http://127.0.0.1:8080"}, "browser_refused", id="same-origin-page"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, "browser_refused", id="fetch-metadata"),
        pytest.param({"Host": "evil.example"}, "host_refused", id="foreign-host"),
        pytest.param({"Host": "127.0.0.1.evil.example:8080"}, "host_refused", id="lookalike"),
        pytest.param({"Host": "0.0.0.0:8080"}, "host_refused", id="unspecified"),
    ],
)
def test_browsers_and_foreign_hosts_are_refused(headers: dict[str, str], rule: str) -> None:
    """Any browser signal or a non-local Host is refused with the rule that refused it."""
    with pytest.raises(PolicyDenied) as info:
        guard.check(headers, LISTEN)
    assert info.value.rule == rule


@pytest.mark.parametrize("host", [None, "127.0.0.1:8080", "localhost", "[::1]:8080", "127.1.2.3"])
def test_bots_are_served(host: str | None) -> None:
    """A bot's request (no browser headers, a loopback Host or none) passes."""
    guard.check({"Host": host} if host else {}, LISTEN)


def test_node_fetch_is_not_mistaken_for_a_browser() -> None:
    """Node's built-in fetch sends `sec-fetch-mode: cors` (but no Origin or Sec-Fetch-Site): a bot."""
    guard.check({"Host": "127.0.0.1:8080", "sec-fetch-mode": "cors"}, LISTEN)


def test_unix_socket_ignores_host() -> None:
    """Over a unix socket no page can rebind a name to us, so the Host header is not checked."""
    guard.check({"Host": "anything"}, Listen.parse("unix:/run/x.sock"))


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        pytest.param("http://evil.example/v1.1/user_info", True, id="foreign"),
        pytest.param("http://127.0.0.1.evil.example:8080/v1.1/user_info", True, id="lookalike"),
        pytest.param("http://user@127.0.0.1/v1.1/user_info", True, id="userinfo"),
        pytest.param("https://evil.example:443/v1.1/ticker", True, id="https-foreign"),
        pytest.param("http://127.0.0.1:8080/v1.1/user_info", False, id="loopback"),
        pytest.param("http://localhost/v1.1/user_info", False, id="localhost"),
        pytest.param("http://[::1]:8080/v1.1/user_info", False, id="ipv6-loopback"),
        pytest.param("/v1.1/user_info", False, id="origin-form"),
    ],
)
def test_an_absolute_form_target_names_the_host(target: str, refused: bool) -> None:
    """An absolute-form target's host replaces the Host header (RFC 9112 §3.2.2): a local Host header
    does not make a foreign target local."""
    headers = {"Host": "127.0.0.1:8080"}
    if refused:
        with pytest.raises(PolicyDenied) as info:
            guard.check(headers, LISTEN, target)
        assert info.value.rule == "host_refused"
    else:
        guard.check(headers, LISTEN, target)
