"""Opening a connection to the upstream: every address its name resolves to, raced (RFC 8305).

asyncio's `create_connection` can do "happy eyeballs" (`happy_eyeballs_delay`), uvloop's cannot, so
the daemon does it here for both: the addresses are put in RFC 8305 §4 order (the families
interleaved, the resolver's first family first, IPv6 on a dual-stack host) and tried one after the
other, a new attempt starting whenever the previous one failed or has been connecting for
ATTEMPT_DELAY_S; the first connection made wins and every other attempt is cancelled (or closed, if it
connected too). A black-holed IPv6 address then costs 250 ms of the connect timeout, not all of it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

ATTEMPT_DELAY_S = 0.25  # RFC 8305 §5: "Connection Attempt Delay", recommended 250 ms

Address = tuple[int, tuple[Any, ...]]  # address family, sockaddr (host, port, ...)
Resolver = Callable[[str, int], Awaitable[list[Address]]]
T = TypeVar("T")


async def resolve(host: str, port: int) -> list[Address]:
    """The host's addresses for a TCP connection, in the order to try them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return interleave([(family, sockaddr) for family, _, _, _, sockaddr in infos])


def interleave(addresses: Sequence[Address]) -> list[Address]:
    """RFC 8305 §4: alternate the families, starting with the first one's; duplicates dropped."""
    unique = list(dict.fromkeys(addresses))
    if not unique:
        return []
    first = unique[0][0]
    ours = [a for a in unique if a[0] == first]
    others = [a for a in unique if a[0] != first]
    out: list[Address] = []
    for index in range(max(len(ours), len(others))):
        out += ours[index:index + 1] + others[index:index + 1]
    return out


async def first_to_connect(attempts: Sequence[Callable[[], Awaitable[T]]], close: Callable[[T], None],
                           delay_s: float = ATTEMPT_DELAY_S) -> T:
    """The result of the first attempt to succeed; each starts `delay_s` after the one before it, or
    as soon as that one fails. When all fail, the last failure is raised."""
    pending: set[asyncio.Future[T]] = set()
    failures: list[BaseException] = []
    started = 0
    try:
        while started < len(attempts) or pending:
            if started < len(attempts):
                pending.add(asyncio.ensure_future(attempts[started]()))
                started += 1
            more = started < len(attempts)
            done, pending = await asyncio.wait(pending, timeout=delay_s if more else None,
                                               return_when=asyncio.FIRST_COMPLETED)
            won = [task for task in done if task.exception() is None]
            if won:
                for extra in won[1:]:
                    close(extra.result())
                return won[0].result()
            failures += [error for task in done if (error := task.exception()) is not None]
    finally:
        for task in pending:
            task.cancel()
            task.add_done_callback(lambda t: _close_if_connected(t, close))
    raise failures[-1] if failures else OSError("no address to connect to")


def _close_if_connected(task: asyncio.Future[T], close: Callable[[T], None]) -> None:
    if not task.cancelled() and task.exception() is None:
        close(task.result())  # it connected while being cancelled: do not leak it
