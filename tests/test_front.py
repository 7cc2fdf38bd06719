"""proxy/web/front.py in-process, on loopback: the timing parts the daemon's tests cannot wait for
(the keep-alive timeout) and the order of a shutdown."""

from __future__ import annotations

import asyncio

from proxy.web.call import Call, Reply
from proxy.web.front import Front


def _refuse_handoff() -> asyncio.Protocol:
    raise AssertionError("no upgrade in these tests")


async def _start(serve: object, keepalive_s: float = 75.0) -> tuple[Front, int]:
    front = Front(serve, _refuse_handoff, max_body=1024, keepalive_s=keepalive_s)  # type: ignore[arg-type]
    await front.listen_tcp("127.0.0.1", 0)
    assert isinstance(front._server, asyncio.Server)
    return front, front._server.sockets[0].getsockname()[1]


async def _ask(port: int, target: str = "/x") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def _answered(reader: asyncio.StreamReader) -> None:
    assert (await asyncio.wait_for(reader.readuntil(b"{}"), timeout=3)).startswith(b"HTTP/1.1 200 OK\r\n")


async def _ok(call: Call) -> Reply:
    return Reply(200, b"{}")


async def test_an_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    front, port = await _start(_ok, keepalive_s=0.3)
    reader, writer = await _ask(port)
    await _answered(reader)
    assert await asyncio.wait_for(reader.read(), timeout=3) == b""  # closed by the daemon, not by us
    writer.close()
    front.close()


async def test_a_busy_connection_outlives_the_timeout() -> None:
    release = asyncio.Event()

    async def slow(call: Call) -> Reply:
        await release.wait()
        return Reply(200, b"{}")

    front, port = await _start(slow, keepalive_s=0.2)
    reader, writer = await _ask(port)
    await asyncio.sleep(0.8)  # several sweeps while the answer is being made
    release.set()
    await _answered(reader)
    writer.close()
    front.close()


async def test_shutdown_answers_the_call_inside_then_closes() -> None:
    """Idle connections close at once; a call being answered gets its answer, with Connection: close."""
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(call: Call) -> Reply:
        started.set()
        await release.wait()
        return Reply(200, b"{}")

    front, port = await _start(slow)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await _ask(port)
    await started.wait()
    stopping = asyncio.ensure_future(front.shutdown(5))
    assert await asyncio.wait_for(idle_reader.read(), timeout=3) == b""
    release.set()
    answer = await asyncio.wait_for(reader.read(), timeout=3)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close\r\n" in answer
    await asyncio.wait_for(stopping, timeout=3)
    assert not front.connections
    for w in (writer, idle_writer):
        w.close()


async def test_the_keep_alive_clock_starts_again_at_the_answer() -> None:
    """An answer that took longer than the keep-alive timeout does not close the connection under the
    client's next request."""
    async def slow(call: Call) -> Reply:
        await asyncio.sleep(0.6)
        return Reply(200, b"{}")

    front, port = await _start(slow, keepalive_s=0.3)
    reader, writer = await _ask(port)
    await _answered(reader)
    await asyncio.sleep(0.15)  # a sweep (every 0.1 s) has run; the last bytes came in 0.75 s ago
    writer.write(b"GET /again HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await _answered(reader)
    writer.close()
    front.close()


async def test_shutdown_waits_for_a_call_whose_client_left() -> None:
    """A signed call must finish (its audit entry, its nonce) even if the bot hung up: shutdown waits."""
    release = asyncio.Event()
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(call: Call) -> Reply:
        started.set()
        await release.wait()
        finished.append(call.path)
        return Reply(200, b"{}")

    front, port = await _start(slow)
    _, writer = await _ask(port, "/order")
    await started.wait()
    writer.close()
    await asyncio.sleep(0.1)  # the daemon has seen the hang-up
    stopping = asyncio.ensure_future(front.shutdown(5))
    await asyncio.sleep(0.3)
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=3)
    assert finished == ["/order"]
