"""Property test: random methods, bodies, headers and encodings never make the daemon fail.

Whatever arrives, the answer is a well-formed HTTP response that is not a 500, the daemon keeps
serving, its log never shows a traceback, and nothing but the configured upstream is contacted.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack, build_stack, curl_json

pytestmark = pytest.mark.slow

METHODS = ["user_info", "order_create", "withdraw_crypt", "ticker", "order_book", "margin/user/order/list",
           "no_such", "USER_INFO", "user_info/", "../x", "%2e%2e", "a" * 300, "", "excode_create"]
VERBS = ["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "POST "]
TYPES = ["application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data",
         "application/json; charset=latin-1", ""]
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
values = st.one_of(text, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.lists(st.integers(), max_size=3))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["form", "json", "raw"]))
    if kind == "form":
        pairs = draw(st.lists(st.tuples(text, text), max_size=6))
        return "&".join(f"{k}={v}" for k, v in pairs).encode()
    if kind == "json":
        import json

        return json.dumps(draw(st.dictionaries(text, values, max_size=6))).encode()
    return draw(st.binary(max_size=200))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    verb = draw(st.sampled_from(VERBS))
    prefix = draw(st.sampled_from(["/v1.1/", "/v1/", "/accounts/main/v1.1/", "/accounts/x/v1/", "/",
                                   "http://127.0.0.1:1/v1.1/", "/healthz?", "/v2/"]))
    target = prefix + draw(st.sampled_from(METHODS)) + draw(st.sampled_from(["", "?pair=BTC_USDT", "?a=%ff"]))
    body = draw(bodies())
    headers = [f"Host: {draw(st.sampled_from(['127.0.0.1', 'localhost:1', 'evil.example', '[::1]']))}",
               f"Content-Type: {draw(st.sampled_from(TYPES))}", f"Content-Length: {len(body)}",
               "Connection: close"]
    headers += draw(st.lists(st.sampled_from(["X-Exmo-Account: main", "X-Exmo-Account: nobody",
                                              "Key: K-x", "Sign: 00", "Origin: null", "X-Max-Wait-Ms: 1",
                                              "X-Request-Id: \u00e9", "Authorization: Bearer x",
                                              "Transfer-Encoding: chunked"]), max_size=3, unique=True))
    head = f"{verb} {target} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = build_stack(tmp_path_factory.mktemp("fuzz"))
    yield stack
    for service in (stack.daemon, stack.sim):
        service.kill9()


@pytest.fixture(scope="module")
def decoy() -> Iterator[list[bytes]]:
    """A listener on 127.0.0.1:1-style targets stands for 'anything else': it must hear nothing."""
    seen: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    seen.append(str(server.getsockname()[1]).encode())  # seen[0]: the decoy's port
    yield seen
    stop.set()
    thread.join()
    server.close()


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(raw=requests())
def test_no_request_breaks_the_daemon(fuzz_stack: Stack, decoy: list[bytes], raw: bytes) -> None:
    """Any request gets an HTTP answer that is not a 500, and only the upstream is ever contacted."""
    raw = raw.replace(b"127.0.0.1:1/", b"127.0.0.1:" + decoy[0] + b"/")
    answer = _send(fuzz_stack.daemon.port, raw)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), answer[:200]
    assert int(status_line.split()[1]) != 500, answer[:500]
    assert len(decoy) == 1, "something other than the upstream was contacted"


def test_after_the_fuzzing_the_daemon_is_healthy(fuzz_stack: Stack) -> None:
    """The daemon still serves, and its log holds no traceback."""
    assert curl_json(f"{fuzz_stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert "Traceback" not in fuzz_stack.logs()
