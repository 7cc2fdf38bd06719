"""End to end: hostile request shapes reach nothing but the configured upstream and never crash the daemon.

Requests are written as exact bytes on a raw socket where curl would normalise them (absolute-form
targets, CONNECT, `..` segments, encoded bytes, a lying Content-Length). Each refused request must leave
the simulator's `executed` counters unchanged, and the daemon must still answer `/healthz` with no
traceback in its log (SPEC §6: only the configured upstream is ever contacted; client headers are not
copied upstream).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.conftest import (
    Service,
    Stack,
    fake_key,
    fake_secret,
    free_port,
    init_config,
    start,
    write_passphrase,
)

# ---- raw-socket helpers -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(method: str | bytes, target: str | bytes, headers: Sequence[tuple[str, str]] = (),
                body: bytes = b"", *, port: int | None = None, content_length: int | None = None) -> bytes:
    """Exactly these bytes: nothing added but Host (when `port` is given) and Content-Length."""
    lines = [(method.encode() if isinstance(method, str) else method) + b" "
             + (target.encode() if isinstance(target, str) else target) + b" HTTP/1.1"]
    names = {name.lower() for name, _ in headers}
    if port is not None and "host" not in names:
        lines.append(f"Host: 127.0.0.1:{port}".encode())
    lines += [f"{name}: {value}".encode() for name, value in headers]
    if method in ("POST", b"POST") or content_length is not None:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, data: bytes, timeout: float = 5.0) -> Reply:
    """Send `data` on a fresh connection and read one response (by its Content-Length)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        with http.client.HTTPResponse(sock, method="POST") as resp:
            resp.begin()
            body = resp.read()
    return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body, time.monotonic() - started)


def get(port: int, path: str) -> Reply:
    return exchange(port, raw_request("GET", path, port=port))


def executed(stack: Stack) -> dict[str, int]:
    return dict(stack.sim_stats()["executed"])


def wait_for_log(service: Service, needle: str, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in service.log():
            return True
        time.sleep(0.02)
    return False


def assert_healthy(service: Service) -> None:
    """The daemon still answers /healthz."""
    reply = get(service.port, "/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def assert_no_traceback_since(service: Service, mark: int) -> None:
    assert "Traceback" not in service.log()[mark:], service.log()[mark:]


def assert_refused(reply: Reply, status: int, slug: str) -> None:
    """A non-200 EXMO-shaped refusal of the daemon's own."""
    assert reply.status == status, reply
    body = reply.json()
    assert body["result"] is False and body["proxy_error"] == slug, body


class Listener:
    """A loopback port standing in for "evil": it only counts the connections it gets."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self._sock.accept()
                conn.close()
                self.connections += 1

    def close(self) -> int:
        """Stop, count anything still waiting in the backlog, and return the total."""
        if self._stop.is_set():
            return self.connections
        self._stop.set()
        self._thread.join()
        self._sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self._sock.accept()[0].close()
                self.connections += 1
        self._sock.close()
        return self.connections


@pytest.fixture
def evil() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def mark(stack: Stack) -> int:
    """Where the daemon log stood when the test began: tracebacks are looked for after it."""
    return len(stack.logs())


# ---- requests aimed elsewhere ---------------------------------------------------------------------


def test_absolute_uri_with_a_foreign_host_is_refused(stack: Stack, evil: Listener, mark: int) -> None:
    """An absolute-form target names the request's host (RFC 9112 §3.2.2), whatever Host says: a
    foreign one is refused like a foreign Host header, and nothing runs."""
    before = executed(stack)
    reply = exchange(stack.daemon.port, raw_request("POST", "http://evil.example/v1.1/user_info",
                                                    port=stack.daemon.port))
    assert_refused(reply, 403, "host_refused")
    assert "the request target's host 'evil.example'" in reply.json()["error"]
    assert executed(stack) == before
    assert_healthy(stack.daemon)
    assert evil.close() == 0
    assert_no_traceback_since(stack.daemon, mark)


def test_absolute_uri_with_a_local_host_goes_only_to_the_upstream(stack: Stack, evil: Listener,
                                                                  mark: int) -> None:
    """A local absolute-form target is served as its path: the call goes to the configured upstream,
    never to the port the target names."""
    before = executed(stack)
    target = f"http://127.0.0.1:{evil.port}/v1.1/user_info"
    reply = exchange(stack.daemon.port, raw_request("POST", target, port=stack.daemon.port))
    assert reply.status == 200 and "balances" in reply.json()
    assert executed(stack).get("user_info", 0) == before.get("user_info", 0) + 1
    assert_healthy(stack.daemon)
    assert evil.close() == 0
    assert_no_traceback_since(stack.daemon, mark)


def test_absolute_uri_public_method_goes_only_to_the_upstream(stack: Stack, evil: Listener,
                                                              mark: int) -> None:
    """A public GET aimed at another port is answered from the configured upstream, not from there."""
    target = f"http://127.0.0.1:{evil.port}/v1.1/ticker"
    reply = exchange(stack.daemon.port, raw_request("GET", target, port=stack.daemon.port))
    assert reply.status == 200 and "BTC_USDT" in reply.json()
    assert_healthy(stack.daemon)
    assert evil.close() == 0
    assert_no_traceback_since(stack.daemon, mark)


@pytest.mark.parametrize(("method", "target", "headers", "status", "slug"), [
    pytest.param("POST", "http://evil.example/v1.1/user_info", [("Host", "evil.example")], 403,
                 "host_refused", id="absolute-uri-foreign-host"),
    pytest.param("POST", "http://127.0.0.1:{evil}/v1.1/user_info", [("Host", "evil.example")], 403,
                 "host_refused", id="absolute-uri-to-listener-foreign-host"),
    pytest.param("POST", "http://evil.example/v1.1/user_info", [], 403, "host_refused",
                 id="absolute-uri-foreign-host-local-header"),
    pytest.param("POST", "http://user@127.0.0.1/v1.1/user_info", [], 403, "host_refused",
                 id="absolute-uri-with-userinfo"),
    pytest.param("CONNECT", "127.0.0.1:{evil}", [("Host", "127.0.0.1:{evil}")], 405,
                 "http_method_not_allowed", id="connect-other-port"),
    pytest.param("CONNECT", "evil.example:443", [("Host", "evil.example:443")], 405,
                 "http_method_not_allowed", id="connect-foreign"),
    pytest.param("POST", "/v1.1/../../etc/passwd", [], 400, "bad_method", id="dot-dot"),
    pytest.param("POST", "/v1.1/%2e%2e/%2e%2e/x", [], 400, "bad_method", id="encoded-dot-dot"),
    pytest.param("POST", "/v1.1/%2E%2E%2F%2E%2E%2Fx", [], 400, "bad_method", id="encoded-dot-dot-slash"),
    pytest.param("POST", "/accounts/../v1.1/user_info", [], 404, "unknown_route", id="accounts-dot-dot"),
    pytest.param("POST", "/accounts/main/../../v1.1/withdraw_crypt", [], 404, "unknown_route",
                 id="accounts-dot-dot-withdraw"),
    pytest.param("GET", "/v1.1/user_info/../../_sim/stats", [], 400, "bad_method", id="sim-stats-dot-dot"),
    pytest.param("GET", "/v1.1/%2e%2e/_sim/stats", [], 400, "bad_method", id="sim-stats-encoded"),
    pytest.param("GET", "/_sim/stats", [], 404, "unknown_route", id="sim-stats-direct"),
    pytest.param("POST", "/v1.1/user_info%00", [], 400, "bad_method", id="nul-byte"),
    pytest.param("POST", "/v1.1/USER_INFO", [], 400, "bad_method", id="upper-case"),
    pytest.param("POST", "/v1.1/user_info%20", [], 400, "bad_method", id="trailing-space"),
    pytest.param("POST", "/v1.1/user_info%3Fx=1", [], 400, "bad_method", id="encoded-query"),
    pytest.param("POST", "/v1.1/withdraw%5Fcrypt", [], 403, "withdrawals_locked", id="encoded-underscore"),
    pytest.param("POST", "/v1.1/%77ithdraw_crypt", [], 403, "withdrawals_locked", id="encoded-letter"),
    pytest.param("POST", "/v1.1/" + "a" * 4000, [], 400, "bad_method", id="4kb-method"),
])
def test_hostile_targets_are_refused(stack: Stack, evil: Listener, mark: int, method: str, target: str,
                                     headers: list[tuple[str, str]], status: int, slug: str) -> None:
    """Refused with the daemon's own answer: nothing executed, nothing else contacted, daemon fine."""
    before = executed(stack)
    headers = [(name, value.format(evil=evil.port)) for name, value in headers]
    data = raw_request(method, target.format(evil=evil.port), headers, port=stack.daemon.port)
    reply = exchange(stack.daemon.port, data)
    assert_refused(reply, status, slug)
    assert b"executed" not in reply.body  # never the simulator's /_sim/stats
    assert executed(stack) == before
    assert_healthy(stack.daemon)
    assert evil.close() == 0
    assert_no_traceback_since(stack.daemon, mark)


def test_encoded_slash_is_one_method_sent_only_upstream(stack: Stack, mark: int) -> None:
    """`user%2Finfo` is decoded to `user/info` (policy and signing see the same name); EXMO says 40015."""
    before = executed(stack)
    reply = exchange(stack.daemon.port, raw_request("POST", "/v1.1/user%2Finfo", port=stack.daemon.port))
    assert reply.status == 200
    body = reply.json()
    assert body["result"] is False and "40015" in body["error"] and "balances" not in body
    assert executed(stack) == before
    assert_healthy(stack.daemon)
    assert_no_traceback_since(stack.daemon, mark)


def test_simulator_really_has_the_stats_route(stack: Stack) -> None:
    """Control for the traversal cases: /_sim/stats exists on the simulator, with `executed`."""
    reply = get(stack.sim.port, "/_sim/stats")
    assert reply.status == 200 and "executed" in reply.json()


# ---- malformed HTTP -------------------------------------------------------------------------------

Build = Callable[[int], bytes]  # the daemon port -> the exact request bytes
MALFORMED = [
    pytest.param(lambda port: raw_request("POST", "/v1.1/" + "a" * 10240, port=port), id="10kb-method"),
    pytest.param(lambda port: raw_request("POST", "/v1.1/user_info", [("X-Exmo-Account", "main\rKey: x")],
                                          port=port), id="bare-cr-header-injection"),
    pytest.param(lambda port: raw_request("POST", "http://evil.example/v1.1/user_info"),
                 id="absolute-uri-no-host"),
    pytest.param(lambda port: raw_request("POST", "/v1.1/user_info", [("X-Pad", "p" * 10000)], port=port),
                 id="10kb-header"),
]


@pytest.mark.parametrize("build", MALFORMED)
def test_malformed_requests_are_400_and_nothing_runs(stack: Stack, build: Build) -> None:
    """Requests the HTTP parser cannot accept are 400 and never reach a handler or the upstream."""
    before = executed(stack)
    reply = exchange(stack.daemon.port, build(stack.daemon.port))
    assert reply.status == 400
    assert executed(stack) == before
    assert_healthy(stack.daemon)


@pytest.mark.parametrize("build", MALFORMED)
def test_malformed_requests_leave_no_traceback(stack: Stack, mark: int, build: Build) -> None:
    """A request the parser refuses is not an internal error: no traceback in the daemon log."""
    exchange(stack.daemon.port, build(stack.daemon.port))
    assert_healthy(stack.daemon)
    assert_no_traceback_since(stack.daemon, mark)


# ---- bodies -------------------------------------------------------------------------------------


def test_declared_huge_body_is_413_at_once(stack: Stack, mark: int) -> None:
    """Content-Length 50 MB with a few bytes sent: 413 at once, without waiting for the rest."""
    before = executed(stack)
    data = raw_request("POST", "/v1.1/user_info", body=b"x=1", content_length=50_000_000,
                       port=stack.daemon.port)
    reply = exchange(stack.daemon.port, data, timeout=3)
    assert_refused(reply, 413, "body_too_large")
    assert reply.elapsed < 1.0
    assert executed(stack) == before
    assert_healthy(stack.daemon)
    assert_no_traceback_since(stack.daemon, mark)


def test_client_hanging_up_mid_body_is_not_an_internal_error(stack: Stack, mark: int) -> None:
    """A body cut short by the client is the client's doing: no 500 'internal', no traceback."""
    request_id = uuid.uuid4().hex
    data = raw_request("POST", "/v1.1/user_info", [("X-Request-Id", request_id)], body=b"x=1",
                       content_length=1000, port=stack.daemon.port)
    with socket.create_connection(("127.0.0.1", stack.daemon.port), timeout=5) as sock:
        sock.sendall(data)
        time.sleep(0.2)  # the handler is now waiting for the rest of the body
    wait_for_log(stack.daemon, request_id)
    assert_healthy(stack.daemon)
    access = [line for line in stack.logs()[mark:].splitlines() if request_id in line]
    assert not any(" 500 " in line for line in access), access
    assert_no_traceback_since(stack.daemon, mark)


# ---- the log --------------------------------------------------------------------------------------


def test_encoded_newline_cannot_forge_log_lines(stack: Stack) -> None:
    """A path with %0A still gives one access line: the injected text stays on the request's own line."""
    request_id, token = uuid.uuid4().hex, uuid.uuid4().hex
    forged = f"%0A2026-01-01%2000:00:00,000%20INFO%20proxy.access:%20FORGED-{token}"
    data = raw_request("POST", "/v1.1/user_info" + forged, [("X-Request-Id", request_id)],
                       port=stack.daemon.port)
    assert exchange(stack.daemon.port, data).status == 404
    assert wait_for_log(stack.daemon, request_id)
    [line] = [line for line in stack.logs().splitlines() if request_id in line]
    assert token in line and "127.0.0.1 POST /v1.1/user_info" in line, line
    assert not any(line.startswith("2026-01-01") for line in stack.logs().splitlines())


# ---- what reaches the upstream --------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Recorder:
    """An EXMO stand-in that records each request's headers and answers {"uid":1}."""

    server: http.server.ThreadingHTTPServer
    seen: list[Seen]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _recording_handler(recorder: list[Seen]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recorder.append(Seen(self.command, self.path, list(self.headers.items()), body))
            payload = b'{"uid":1}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    seen: list[Seen] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _recording_handler(seen))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Recorder(server, seen)
    server.shutdown()
    server.server_close()


@dataclass
class RecordedDaemon:
    service: Service
    key: str


@pytest.fixture
def recorded(tmp_path: Path, recorder: Recorder) -> Iterator[RecordedDaemon]:
    """A daemon whose --upstream is the recorder."""
    key = fake_key()
    pfile = write_passphrase(tmp_path)
    config = init_config(tmp_path, key, fake_secret(), pfile)
    port = free_port()
    service = start(["run", "--config", str(config), "--passphrase-file", str(pfile), "--listen",
                     f"127.0.0.1:{port}", "--upstream", recorder.url], port, tmp_path / "daemon.log")
    yield RecordedDaemon(service, key)
    service.kill9()


HOSTILE_HEADERS = [
    ("Key", "K-client-supplied"), ("Sign", "f" * 128), ("X-Forwarded-For", "10.6.6.6"),
    ("Cookie", "session=client-cookie"), ("Forwarded", "for=10.6.6.6;host=evil.example"),
    ("Via", "1.1 evil.example"), ("Proxy-Authorization", "Basic Y2xpZW50OmNsaWVudA=="),
    ("X-Exmo-Account", "main"), ("X-Request-Id", "client-request-id"), ("X-Custom", "client-custom"),
    ("Accept-Encoding", "identity;client"),
]
CLIENT_ONLY = {"cookie", "x-forwarded-for", "forwarded", "via", "proxy-authorization", "x-exmo-account",
               "x-request-id", "x-custom"}


def _assert_nothing_copied(seen: Seen, upstream_port: int) -> None:
    names = {name.lower() for name, _ in seen.headers}
    assert not names & CLIENT_ONLY, seen.headers
    values = " ".join(value for _, value in seen.headers)
    for marker in ("client", "10.6.6.6", "evil.example", "f" * 128):
        assert marker not in values, seen.headers
    assert dict((k.lower(), v) for k, v in seen.headers)["host"] == f"127.0.0.1:{upstream_port}"


def test_client_headers_never_reach_the_upstream(recorded: RecordedDaemon, recorder: Recorder) -> None:
    """Key, Sign, Host, X-Forwarded-For, Cookie and the rest from the client are not copied upstream."""
    port = recorded.service.port
    headers = [("Host", f"localhost:{port}"), *HOSTILE_HEADERS,
               ("Content-Type", "application/x-www-form-urlencoded")]
    reply = exchange(port, raw_request("POST", "/v1.1/user_info", headers, b"nonce=1"))
    assert (reply.status, reply.json()) == (200, {"uid": 1})
    [seen] = recorder.seen
    assert (seen.method, seen.path) == ("POST", "/v1.1/user_info")
    _assert_nothing_copied(seen, recorder.server.server_address[1])
    upstream = [(k.lower(), v) for k, v in seen.headers]
    assert [v for k, v in upstream if k == "key"] == [recorded.key]
    [sign] = [v for k, v in upstream if k == "sign"]
    assert len(sign) == 128 and set(sign) <= set("0123456789abcdef")
    assert dict(parse_qsl(seen.body.decode()))["nonce"] != "1"  # the daemon's nonce, not the client's
    assert_healthy(recorded.service)
    assert "Traceback" not in recorded.service.log()


def test_public_call_carries_no_key_and_no_client_headers(recorded: RecordedDaemon,
                                                          recorder: Recorder) -> None:
    """A public GET goes out unsigned: neither the configured Key nor anything the client sent."""
    port = recorded.service.port
    reply = exchange(port, raw_request("GET", "/v1.1/ticker", [("Host", f"127.0.0.1:{port}"),
                                                               *HOSTILE_HEADERS]))
    assert reply.status == 200
    [seen] = recorder.seen
    assert (seen.method, seen.path) == ("GET", "/v1.1/ticker")
    _assert_nothing_copied(seen, recorder.server.server_address[1])
    names = {name.lower() for name, _ in seen.headers}
    assert not names & {"key", "sign"}
    assert recorded.key not in " ".join(v for _, v in seen.headers)
