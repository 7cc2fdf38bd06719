"""End to end: the daemon's HTTP/1.1 listener (proxy/web/front.py) on raw sockets and real clients.

Pipelining, `Expect: 100-continue`, chunked bodies, HEAD, HTTP/1.0, the size limits, a client gone
mid-body, and WebSocket upgrades handed to aiohttp after plain requests on the same connection.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import IO, Any, cast

import pytest
from websockets.sync.client import connect

from tests.conftest import Stack

pytestmark = pytest.mark.slow

ORDER = b"pair=BTC_USD&quantity=0.001&price=1&type=buy"  # far below the market: it rests


def head(method: str, target: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(target: str, body: bytes, *headers: str) -> bytes:
    return head("POST", target, "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}", *headers) + body


def read_response(stream: IO[bytes], method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    """One response from a connection's byte stream (several can follow each other on it)."""
    status_line = stream.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
    return int(status_line.split()[1]), headers, stream.read(length)


def connection(stack: Stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.daemon.port), timeout=10)


def closed(sock: socket.socket) -> bool:
    return sock.recv(1) == b""


def executed(stack: Stack) -> Any:
    return stack.sim_stats()["executed"]


def test_pipelined_requests_are_answered_in_order(stack: Stack) -> None:
    """Three requests in one write: three answers, in the order asked, on the same connection."""
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("GET", "/v1.1/ticker", "X-Request-Id: first")
                     + post("/v1.1/user_info", b"", "X-Request-Id: second")
                     + head("GET", "/healthz", "X-Request-Id: third"))
        answers = [read_response(stream) for _ in range(3)]
    assert [h["x-request-id"] for _, h, _ in answers] == ["first", "second", "third"]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert "BTC_USD" in json.loads(answers[0][2])
    assert "balances" in json.loads(answers[1][2])
    assert json.loads(answers[2][2]) == {"status": "ok"}


def test_expect_100_continue_is_answered_before_the_body(stack: Stack) -> None:
    """curl's way with bodies over 1 KiB: the head alone first, the body after `100 Continue`."""
    before = executed(stack).get("order_create", 0)
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("POST", "/v1.1/order_create", "Content-Type: application/x-www-form-urlencoded",
                          f"Content-Length: {len(ORDER)}", "Expect: 100-continue"))
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(ORDER)
        status, _, body = read_response(stream)
    assert status == 200 and "order_id" in json.loads(body), body
    assert executed(stack)["order_create"] == before + 1


def test_chunked_body_is_read_whole(stack: Stack) -> None:
    """A chunked body, split mid-parameter, is the same order as a Content-Length one."""
    first, second = ORDER[:10], ORDER[10:]
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(first), first, len(second), second)
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("POST", "/v1.1/order_create", "Content-Type: application/x-www-form-urlencoded",
                          "Transfer-Encoding: chunked") + chunked)
        status, _, body = read_response(stream)
    assert status == 200 and "order_id" in json.loads(body), body


def test_chunked_body_over_the_limit_is_refused_and_the_connection_closed(stack: Stack) -> None:
    """Chunks past limits.max_body_bytes (64 KiB by default): 413, nothing sent, the connection closed."""
    before = executed(stack)
    chunk = b"a" * 30_000
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("POST", "/v1.1/user_info", "Transfer-Encoding: chunked")
                     + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3)
        status, headers, body = read_response(stream)
        assert closed(sock)
    assert status == 413 and json.loads(body)["proxy_error"] == "body_too_large"
    assert headers["connection"] == "close"
    assert executed(stack) == before


def test_head_gets_the_length_and_no_body(stack: Stack) -> None:
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("HEAD", "/v1.1/ticker") + head("GET", "/healthz"))
        status, headers, _ = read_response(stream, "HEAD")
        assert status == 200 and int(headers["content-length"]) > 10
        assert read_response(stream, "GET")[2] == b'{"status": "ok"}'  # next on the wire: no body between


def test_http_1_0_closes_after_the_answer_unless_kept_alive(stack: Stack) -> None:
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("GET", "/healthz", version="1.0"))
        assert read_response(stream)[0] == 200
        assert closed(sock)
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("GET", "/healthz", "Connection: keep-alive", version="1.0")
                     + head("GET", "/healthz"))
        status, headers, _ = read_response(stream)
        assert (status, headers["connection"]) == (200, "keep-alive")  # a 1.0 client is told
        assert read_response(stream)[0] == 200


@pytest.mark.parametrize("request_bytes", [
    pytest.param(head("GET", "/healthz", "X-Pad: " + "p" * 9000), id="a-header-over-8190-bytes"),
    pytest.param(head("GET", "/v1.1/ticker?" + "a" * 9000), id="a-target-over-8190-bytes"),
    pytest.param(head("GET", "/healthz", *[f"X-{n}: {'p' * 8000}" for n in range(10)]), id="heads-over-64k"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n", id="space-in-a-name"),
])
def test_malformed_or_oversized_heads_get_400_and_a_closed_connection(stack: Stack,
                                                                      request_bytes: bytes) -> None:
    mark = len(stack.logs())
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(request_bytes)
        status, _, body = read_response(stream)
        assert closed(sock)
    assert status == 400 and json.loads(body)["proxy_error"] == "bad_http", body
    assert "Traceback" not in stack.logs()[mark:]


def test_a_client_gone_mid_body_still_gets_its_access_line(stack: Stack) -> None:
    with connection(stack) as sock:
        sock.sendall(head("POST", "/v1.1/user_info", "Content-Length: 1000", "X-Request-Id: gone-mid-body")
                     + b"x=")
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while "gone-mid-body" not in stack.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in stack.logs().splitlines() if "gone-mid-body" in line)
    assert " 499 " in line


@pytest.mark.parametrize("pipelined", [False, True], ids=["after-an-answer", "pipelined-behind-a-request"])
def test_websocket_upgrade_after_plain_requests_on_one_connection(stack: Stack, pipelined: bool) -> None:
    """aiohttp takes the connection over at the upgrade, after the answers to the requests before it."""
    sock = connection(stack)
    stream = cast(IO[bytes], sock.makefile("rb", buffering=0))  # reads no further than asked: reused below
    if pipelined:
        sock.sendall(head("GET", "/healthz", "X-Request-Id: before-upgrade")
                     + head("GET", "/v1/public", "Upgrade: websocket", "Connection: Upgrade",
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"))
        assert read_response(stream, "GET")[1]["x-request-id"] == "before-upgrade"
        assert read_response(stream, "GET")[0] == 101
        stream.close()
        sock.close()
        return
    sock.sendall(head("GET", "/v1.1/ticker"))
    assert read_response(stream, "GET")[0] == 200
    with connect(f"ws://127.0.0.1:{stack.daemon.port}/v1/public", sock=sock) as ws:
        ws.send(json.dumps({"id": 1, "method": "subscribe", "topics": ["spot/ticker:BTC_USD"]}))
        events = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert any(event.get("event") == "subscribed" for event in events), events


def test_a_header_that_never_ends_is_cut_off(stack: Stack) -> None:
    """A header value streamed without end is refused once the request passes max_body + 128 KiB,
    not buffered for ever (no single header is complete, so no per-header limit can see it)."""
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        status = None
        with contextlib.suppress(ConnectionError):
            for _ in range(100):  # up to 1 MiB
                sock.sendall(b"a" * 10240)
                time.sleep(0.002)
        status, _, body = read_response(stream)
    assert status == 400 and json.loads(body)["proxy_error"] == "bad_http", body


def test_a_chunked_bodys_trailers_are_not_headers(stack: Stack) -> None:
    """A trailer naming another account (or any header) changes nothing: it is dropped."""
    body = b"pair=BTC_USD"
    chunked = b"%x\r\n%s\r\n0\r\nX-Exmo-Account: nobody\r\nContent-Type: application/json\r\n\r\n" % (
        len(body), body)
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("POST", "/v1.1/user_info", "Transfer-Encoding: chunked") + chunked)
        status, _, answer = read_response(stream)
    assert status == 200 and "balances" in json.loads(answer), answer


def test_header_values_lose_trailing_whitespace(stack: Stack) -> None:
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(head("GET", "/healthz", "X-Request-Id: spaced-id   "))
        assert read_response(stream)[1]["x-request-id"] == "spaced-id"


def test_an_encoded_slash_does_not_make_a_route(stack: Stack) -> None:
    """Routes are matched with %2F still encoded (as aiohttp did): /v1.1%2Fuser_info is no route."""
    with connection(stack) as sock, sock.makefile("rb") as stream:
        sock.sendall(post("/v1.1%2Fuser_info", b""))
        status, _, body = read_response(stream)
    assert status == 404 and json.loads(body)["proxy_error"] == "unknown_route"


def test_a_non_websocket_upgrade_behind_a_request_keeps_all_its_bytes(stack: Stack) -> None:
    """An `Upgrade: h2c` POST is handed to aiohttp (which answers it as plain HTTP) after the answer
    before it, with every byte: those that came with its head and those that came later."""
    with connection(stack) as sock, sock.makefile("rb") as stream:
        body = b"a=1&b=2"
        sock.sendall(head("GET", "/healthz", "X-Request-Id: before")
                     + head("POST", "/v1.1/ticker", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
                            "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", f"Content-Length: {len(body)}")
                     + body[:3])
        time.sleep(0.3)
        sock.sendall(body[3:])
        first = read_response(stream, "GET")
        second = read_response(stream)
    assert first[1]["x-request-id"] == "before"
    assert second[0] == 200 and "BTC_USD" in json.loads(second[2]), second
