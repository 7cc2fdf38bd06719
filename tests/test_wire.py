"""The upstream HTTP/1.1 client against raw servers that answer byte by byte as told.

Every framing EXMO (or a proxy in front of it) might use, the limits, and above all the line between
"not sent" (safe to retry) and "sent" (outcome unknown).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from proxy.upstream.connect import interleave
from proxy.upstream.wire import WireClient, WireError

Script = Callable[[bytes], list[bytes]]  # request bytes -> the pieces to write back


@dataclass
class RawServer:
    """Answers each request with the pieces `script` returns, written one by one; counts connections."""

    script: Script
    close_after: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for piece in self.script(request):
                    if piece == b"<hang>":
                        await asyncio.sleep(30)
                    if piece == b"<pause>":
                        await asyncio.sleep(0.05)
                        continue
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., RawServer]]:
    servers: list[asyncio.Server] = []
    made: list[RawServer] = []

    def start(script: Script, close_after: bool = False) -> RawServer:
        raw = RawServer(script, close_after)
        made.append(raw)
        return raw

    async def boot() -> None:
        for raw in made:
            if not raw.port:
                server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
                servers.append(server)
                raw.port = server.sockets[0].getsockname()[1]

    start.boot = boot  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.close()


async def started(serve: Callable[..., RawServer], script: Script, close_after: bool = False) -> RawServer:
    raw = serve(script, close_after)
    await serve.boot()  # type: ignore[attr-defined]
    return raw


def ok(body: bytes = b'{"result":true}', extra: bytes = b"") -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), extra, body)]


async def call(raw: RawServer, method: str = "POST", body: bytes | None = b"a=1", timeout_s: float = 2,
               client: WireClient | None = None, max_bytes: int = 1024 * 1024) -> tuple[int, bytes]:
    wire = client or WireClient(f"http://127.0.0.1:{raw.port}", max_bytes=max_bytes)
    answer = await wire.request(method, "/v1.1/order_create", {"Key": "K-x"}, body, timeout_s=timeout_s,
                                connect_timeout_s=1)
    return answer.status, answer.body


async def test_content_length_answer_and_connection_reuse(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: ok())
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    for _ in range(3):
        assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert raw.connections == 1
    request = raw.requests[0]
    assert request.startswith(b"POST /v1.1/order_create HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:%d\r\n" % raw.port in request and b"\r\nKey: K-x\r\n" in request
    assert request.endswith(b"Content-Length: 3\r\n\r\na=1")


async def test_chunked_answer_split_into_single_bytes(serve: Callable[..., RawServer]) -> None:
    wire_bytes = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;ext=1\r\n{\"res\r\na\r\nult\":true}\r\n0\r\nX-Trailer: 1\r\n\r\n")
    raw = await started(serve, lambda request: [bytes([b]) for b in wire_bytes])
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert raw.connections == 1


@pytest.mark.parametrize("coding, encode", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
])
async def test_compressed_answers_are_decoded(serve: Callable[..., RawServer], coding: str,
                                              encode: Callable[[bytes], bytes]) -> None:
    body = b'{"result":true,"pad":"' + b"x" * 5000 + b'"}'
    header = b"Content-Encoding: %s\r\n" % coding.encode()
    raw = await started(serve, lambda request: ok(encode(body), header))
    assert await call(raw) == (200, body)


async def test_close_delimited_answer(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: [b"HTTP/1.0 200 OK\r\n\r\n{\"result\":", b"true}"],
                        close_after=True)
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert raw.connections == 2  # never reused


async def test_interim_answers_are_skipped(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: [b"HTTP/1.1 100 Continue\r\n\r\n", *ok()])
    assert await call(raw) == (200, b'{"result":true}')


async def test_connection_close_and_stray_bytes_stop_reuse(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: ok(extra=b"Connection: close\r\n"))
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    await call(raw, client=wire)
    await call(raw, client=wire)
    assert raw.connections == 2
    stray = await started(serve, lambda request: [ok()[0] + b"HTTP/1.1 200 OK\r\n"])
    wire = WireClient(f"http://127.0.0.1:{stray.port}")
    await call(stray, client=wire)
    await call(stray, client=wire)
    assert stray.connections == 2


async def test_a_connection_the_server_closed_is_not_reused(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: ok(), close_after=True)  # closes after each answer
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    await call(raw, client=wire)
    await asyncio.sleep(0.05)  # the close reaches the client
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert raw.connections == 2


@pytest.mark.parametrize("answer, reason", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", "larger than"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
     % (len(gzip.compress(b"0" * 3_000_000)), gzip.compress(b"0" * 3_000_000)), "once decoded"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "Expected HTTP/"),  # from here on the reasons are llhttp's
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"res", "closed the connection"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nhello", "Duplicate Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     "Content-Length can't be present with Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n5\r\nhello\r\n0\r\n\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "chunk size"),
    ("HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n\r\nhi".encode("latin-1"), "Content-Length"),  # isdigit
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "transfer coding"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\n"
     + gzip.compress(b"x" * 100)[:12], "does not end"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
     % (2 * len(gzip.compress(b"{}")), gzip.compress(b"{}") * 2), "does not end"),
])
async def test_bad_answers_fail_as_sent(serve: Callable[..., RawServer], answer: bytes, reason: str) -> None:
    raw = await started(serve, lambda request: [answer], close_after=True)
    with pytest.raises(WireError) as caught:
        await call(raw)
    assert caught.value.sent and not caught.value.timeout
    assert reason in str(caught.value)


async def test_no_answer_in_time_is_a_timeout_after_sending(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: [b"<hang>"])
    with pytest.raises(WireError) as caught:
        await call(raw, timeout_s=0.3)
    assert caught.value.sent and caught.value.timeout
    assert len(raw.requests) == 1


async def test_nothing_listening_is_not_sent() -> None:
    wire = WireClient("http://127.0.0.1:1")
    with pytest.raises(WireError) as caught:
        await wire.request("POST", "/v1.1/order_create", {}, b"a=1", timeout_s=1, connect_timeout_s=1)
    assert not caught.value.sent and isinstance(caught.value.cause, ConnectionRefusedError)


@pytest.mark.parametrize("target, headers", [
    ("/v1.1/x\r\nX-Evil: 1", {}), ("/v1.1/x y", {}), ("/v1.1/x", {"Key": "K-1\r\nX-Evil: 1"}),
    ("/v1.1/x", {"Key": "K-1\n"}),
])
async def test_line_breaks_are_refused_before_sending(serve: Callable[..., RawServer], target: str,
                                                      headers: dict[str, str]) -> None:
    raw = await started(serve, lambda request: ok())
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    with pytest.raises(WireError) as caught:
        await wire.request("POST", target, headers, b"a=1", timeout_s=1, connect_timeout_s=1)
    assert not caught.value.sent and raw.requests == []


async def test_a_new_origin_drops_old_connections(serve: Callable[..., RawServer]) -> None:
    first = await started(serve, lambda request: ok(b"1"))
    second = await started(serve, lambda request: ok(b"2"))
    wire = WireClient(f"http://127.0.0.1:{first.port}")
    assert (await call(first, client=wire))[1] == b"1"
    wire.set_origin(f"http://127.0.0.1:{second.port}")
    assert (await call(second, client=wire))[1] == b"2"
    assert len(first.requests) == 1


async def test_get_without_body_sends_no_length(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: ok())
    assert await call(raw, method="GET", body=None) == (200, b'{"result":true}')
    assert b"content-length" not in raw.requests[0].lower()


async def test_no_content_answers_ignore_a_transfer_coding(serve: Callable[..., RawServer]) -> None:
    answer = b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await started(serve, lambda request: [answer])
    assert await call(raw, timeout_s=1) == (204, b"")


async def test_a_connection_busy_when_the_origin_changes_is_never_reused(
        serve: Callable[..., RawServer]) -> None:
    """A reload that changes the upstream while a call is in flight: that call's connection is not
    put back, so later calls (with their Key and Sign) reach the new origin only."""
    old = await started(serve, lambda request: [b"<pause>", *ok(b"old")])
    new = await started(serve, lambda request: ok(b"new"))
    wire = WireClient(f"http://127.0.0.1:{old.port}")
    in_flight = asyncio.ensure_future(call(old, client=wire))
    await asyncio.sleep(0.01)
    wire.set_origin(f"http://127.0.0.1:{new.port}")
    assert (await in_flight)[1] == b"old"
    assert (await call(new, client=wire))[1] == b"new"
    assert (await call(new, client=wire))[1] == b"new"
    assert len(old.requests) == 1 and b"Host: 127.0.0.1:%d" % new.port in new.requests[0]


async def test_nothing_is_written_once_the_deadline_has_passed(serve: Callable[..., RawServer]) -> None:
    """All connections busy until just before the deadline: the call is refused unsent (safe to
    retry) instead of being written and then reported 'outcome unknown' a moment later."""
    raw = await started(serve, lambda request: ok())
    wire = WireClient(f"http://127.0.0.1:{raw.port}", limit=1)
    await wire._slots.acquire()  # the one connection is busy
    asyncio.get_running_loop().call_later(0.48, wire._slots.release)
    with pytest.raises(WireError) as caught:
        await wire.request("POST", "/v1.1/order_create", {}, b"a=1", timeout_s=0.5, connect_timeout_s=1)
    assert not caught.value.sent and caught.value.timeout
    assert raw.requests == []


async def test_switching_from_https_to_http_drops_tls(serve: Callable[..., RawServer]) -> None:
    raw = await started(serve, lambda request: ok())
    wire = WireClient("https://127.0.0.1:1")
    wire.set_origin(f"http://127.0.0.1:{raw.port}")
    assert await call(raw, client=wire) == (200, b'{"result":true}')


# --- defects of the hand-written parser that httptools (llhttp) replaced (issue 11) ------------------


async def test_a_status_with_a_non_ascii_digit_fails_the_call_at_once(
        serve: Callable[..., RawServer]) -> None:
    """`2²0` is no status code: the call fails as sent, at once (it used to raise inside data_received
    and leave the caller waiting for its timeout)."""
    raw = await started(serve, lambda request: ["HTTP/1.1 2\u00b20 OK\r\nContent-Length: 2\r\n\r\n{}"
                                                .encode("latin-1")])
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with pytest.raises(WireError) as caught:
        await call(raw, timeout_s=5)
    assert caught.value.sent and not caught.value.timeout and loop.time() - begun < 1


async def test_an_empty_compressed_body_is_an_empty_answer(serve: Callable[..., RawServer]) -> None:
    """`Content-Encoding: gzip` with no body is an empty answer, not a broken one (which would have been
    a false "outcome unknown")."""
    raw = await started(serve, lambda request: [b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                                                b"Content-Length: 0\r\n\r\n"])
    assert await call(raw) == (200, b"")


async def test_any_connection_close_header_stops_reuse(serve: Callable[..., RawServer]) -> None:
    """`Connection: close` then `Connection: keep-alive`: close wins, the connection is not reused."""
    raw = await started(serve, lambda request: ok(extra=b"Connection: close\r\nConnection: keep-alive\r\n"))
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    await call(raw, client=wire)
    await call(raw, client=wire)
    assert raw.connections == 2


@pytest.mark.parametrize("header", [
    pytest.param(b"Content-Type: application/json\rX-Evil: 1", id="bare-cr"),
    pytest.param(b"Content-Type: application/json\x00", id="nul"),
    pytest.param(b"Content-Type: application/json\x7f", id="del"),
    pytest.param(b"X-Folded: a\r\n b", id="obs-fold"),
])
async def test_control_characters_in_a_header_are_refused(serve: Callable[..., RawServer],
                                                          header: bytes) -> None:
    """A header value with CR, NUL or DEL (or a folded line) is a malformed answer: it never reaches
    aiohttp, which would refuse to write that Content-Type after EXMO acted."""
    raw = await started(serve, lambda request: [b"HTTP/1.1 200 OK\r\n" + header + b"\r\nContent-Length: 2"
                                                b"\r\n\r\n{}"], close_after=True)
    with pytest.raises(WireError) as caught:
        await call(raw)
    assert caught.value.sent and not caught.value.timeout


@pytest.mark.parametrize("piece", [1_000_000, 1000, 7], ids=["one-write", "1000-byte-pieces", "7-bytes"])
async def test_the_header_cap_does_not_depend_on_how_the_bytes_arrive(serve: Callable[..., RawServer],
                                                                       piece: int) -> None:
    """A head over 64 KiB is refused whether it comes in one write or in small pieces."""
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    raw = await started(serve, lambda request: [head[i:i + piece] for i in range(0, len(head), piece)],
                        close_after=True)
    with pytest.raises(WireError, match="64 KiB") as caught:
        await call(raw, timeout_s=20)
    assert caught.value.sent


async def test_a_black_holed_address_does_not_eat_the_connect_timeout(
        serve: Callable[..., RawServer]) -> None:
    """Happy eyeballs: the first address swallows SYNs (its accept queue is full), the second answers;
    the call goes through after ~250 ms instead of failing at the 5 s connect timeout."""
    raw = await started(serve, lambda request: ok())
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = [socket.socket() for _ in range(3)]
    for sock in filler:  # without accept(), these fill the queue; later SYNs are dropped, unanswered
        sock.setblocking(False)
        sock.connect_ex(hole.getsockname())
    hole_address = (socket.AF_INET, hole.getsockname())

    async def resolver(host: str, port: int) -> list[tuple[int, tuple[object, ...]]]:
        return [hole_address, (socket.AF_INET, ("127.0.0.1", raw.port))]

    wire = WireClient(f"http://exmo.example:{raw.port}", resolver=resolver)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    try:
        answer = await wire.request("POST", "/v1.1/user_info", {}, b"", timeout_s=10, connect_timeout_s=5)
    finally:
        for sock in (*filler, hole):
            sock.close()
    assert answer.status == 200 and loop.time() - begun < 2


def test_addresses_are_tried_with_the_families_interleaved() -> None:
    """RFC 8305 §4: the first family first, then alternating; duplicates once."""
    v6a, v6b = (socket.AF_INET6, ("2001:db8::1", 443, 0, 0)), (socket.AF_INET6, ("2001:db8::2", 443, 0, 0))
    v4a, v4b = (socket.AF_INET, ("192.0.2.1", 443)), (socket.AF_INET, ("192.0.2.2", 443))
    assert interleave([v6a, v6b, v4a, v4b, v6a]) == [v6a, v4a, v6b, v4b]
    assert interleave([v4a, v6a, v6b]) == [v4a, v6a, v6b]


async def test_utf8_in_a_header_value_is_not_a_broken_answer(serve: Callable[..., RawServer]) -> None:
    """obs-text (here the UTF-8 of "Рубль — RUB") is legal in a header value: the answer is EXMO's."""
    raw = await started(serve, lambda request: ok(extra="X-Note: Рубль — RUB\r\n".encode()))
    assert await call(raw) == (200, b'{"result":true}')


async def test_a_status_below_100_fails_at_once(serve: Callable[..., RawServer]) -> None:
    """`099` is no interim answer to wait past: the call fails as sent, without waiting its timeout."""
    raw = await started(serve, lambda request: [b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\n{}"])
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with pytest.raises(WireError, match="no HTTP status") as caught:
        await call(raw, timeout_s=5)
    assert caught.value.sent and loop.time() - begun < 1


async def test_a_switch_after_a_complete_answer_keeps_the_answer(serve: Callable[..., RawServer]) -> None:
    """A 101 that follows a whole answer in the same bytes is stray: the answer stands, the
    connection is not reused."""
    raw = await started(serve, lambda request: [ok()[0] + b"HTTP/1.1 101 Switching Protocols\r\n"
                                                b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"])
    wire = WireClient(f"http://127.0.0.1:{raw.port}")
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert await call(raw, client=wire) == (200, b'{"result":true}')
    assert raw.connections == 2
