"""Redis commands started in one pass of the event loop go out together, as one pipeline.

A round trip to Redis costs this daemon far more CPU than the command itself (on loopback here, ~100
µs of system calls and client work against ~20 µs for the lease script inside Redis): eight calls on
different keys that each send their own script pay eight times, together they pay about twice. So a
command is queued, and the first one queued starts a send at the next pass of the event loop:
everything queued by then goes with it. At low load (the last exchange carried one command alone,
and nothing is on its way) an awaited command goes at once from its caller's task instead, which
saves two passes of the loop on its way (bench/RESULTS.md). Commands sent together are independent
of each other: each gets its own reply or error, and a batch is not atomic.

The batch goes straight onto a connection of redis-py's pool, through its Connection API (the hiredis
reply parser, TLS, AUTH, and for Sentinel the discovery of the primary on each connect), packed by
hiredis; the client's per-command layer on top (pool checkout, retry wrapper, telemetry hooks) cost
more than the round trip itself (`bench/RESULTS.md`). Connections stay with the batcher between sends.

Scripts are sent as EVALSHA. Redis forgets them on a restart, and a replica promoted by Sentinel may
never have had them; a NOSCRIPT answer (the command did not run) loads them and sends those commands
again.

A waiter that gives up (cancelled) does not stop its command: it is already on its way, and Redis may
run it. `orphan`, if given, is told the result of a command whose waiter is gone, so that what it
took can be given back (a lease).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import (
    BusyLoadingError,
    MasterDownError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as Disconnected
from redis.exceptions import TimeoutError as TimedOut

log = logging.getLogger(__name__)

RETRIES, RETRY_AFTER_S = 2, 0.02
Run = Callable[[Callable[[aioredis.Redis], Awaitable[list[Any]]]], Awaitable[list[Any]]]
Failed = Callable[[BaseException], Exception]
Orphan = Callable[[Any], None]


class _Item:
    __slots__ = ("args", "future", "orphan")

    def __init__(self, args: tuple[Any, ...], future: asyncio.Future[Any], orphan: Orphan | None) -> None:
        self.args, self.future, self.orphan = args, future, orphan


class Batch:
    """The queue. `run` sends one batch, bounded, and turns its failure into CoordinationUnavailable;
    `failed` does the same for one command's error reply (the others in its batch stand)."""

    def __init__(self, run: Run, failed: Failed, scripts: Mapping[str, str]) -> None:
        self._run, self._failed = run, failed
        self._scripts = {name: (hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest(), text)
                         for name, text in scripts.items()}
        self._queued: list[_Item] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._idle: list[Any] = []  # connections taken from redis-py's pool, kept between batches
        self._busy = 0  # exchanges with Redis on their way
        # the last exchange carried one command and none came meanwhile: low load, where a command
        # goes at once (`call`); under load, commands are batched
        self._quiet = True

    async def call(self, *args: Any, orphan: Orphan | None = None) -> Any:
        """One command, awaited. At low load (nothing on its way to Redis, and the last exchange carried
        one command alone) it goes at once from the caller's own task: no hop through the sender's;
        else it joins the queue. (Cut off there, it may or may not have run: the caller undoes what it
        may have taken, as Coordinator.take does.)"""
        if self._queued or self._busy or not self._quiet:
            return await self.command(*args, orphan=orphan)
        self._busy += 1
        try:
            (result,) = await self._run(lambda client: self._execute(client, [args]))
        finally:
            self._busy -= 1
            self._quiet = not self._queued
        if isinstance(result, Exception):
            raise self._failed(result)
        return result

    async def call_script(self, name: str, keys: list[str], args: list[Any],
                          orphan: Orphan | None = None) -> Any:
        return await self.call("EVALSHA", self._scripts[name][0], len(keys), *keys, *args, orphan=orphan)

    def command(self, *args: Any, orphan: Orphan | None = None) -> asyncio.Future[Any]:
        """Queue one Redis command; its future gets the reply (or the error that ended the batch)."""
        loop = asyncio.get_running_loop()
        if not self._queued:  # the send starts at the next pass; whatever is queued by then goes too
            task = loop.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append(_Item(args, future, orphan))
        return future

    def script(self, name: str, keys: list[str], args: list[Any],
               orphan: Orphan | None = None) -> asyncio.Future[Any]:
        sha = self._scripts[name][0]
        return self.command("EVALSHA", sha, len(keys), *keys, *args, orphan=orphan)

    async def close(self) -> None:
        """Let the batches on their way finish (their waiters and orphans are answered), and those
        they start (an orphan's release)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self) -> None:
        items, self._queued = self._queued, []
        # A command with an orphan hook (a TAKE) whose waiter gave up before it went out is not sent:
        # what it would take, nobody would use.
        items = [item for item in items if item.orphan is None or not item.future.cancelled()]
        if not items:
            return
        self._busy += 1
        try:
            results = await self._run(lambda client: self._execute(client, [item.args for item in items]))
        except Exception as exc:  # every waiter gets the batch's failure
            results = [exc] * len(items)
        else:
            results = [self._failed(result) if isinstance(result, Exception) else result
                       for result in results]
        finally:
            self._busy -= 1
            self._quiet = len(items) == 1 and not self._queued
        for item, result in zip(items, results, strict=True):
            if not item.future.done():
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
            elif item.orphan is not None and not isinstance(result, BaseException):
                try:
                    item.orphan(result)
                except Exception:  # one orphan's failure must not leave the other waiters hanging
                    log.exception("giving back what a cancelled Redis command took failed")

    async def _execute(self, client: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
        results = await self._exchange(client, commands)
        again = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if again:  # those did not run: load the scripts, send them again
            loading = [("SCRIPT", "LOAD", text) for _sha, text in self._scripts.values()]
            for loaded in await self._exchange(client, loading):
                if isinstance(loaded, Exception):
                    raise loaded
            for i, result in zip(again, await self._exchange(client, [commands[i] for i in again]),
                                 strict=True):
                results[i] = result
        return results

    async def _exchange(self, client: aioredis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send the commands on one connection and read their replies (an error reply is that
        command's result). A connection that broke (Redis restarted, a failover) is reconnected and
        the commands sent again, RETRIES times at most: each of ours may run twice (scripts.py,
        records.py say how)."""
        pool = client.connection_pool
        connection = self._idle.pop() if self._idle else await pool.get_connection()  # type: ignore[no-untyped-call]
        payload = b"".join(hiredis.pack_command(args) for args in commands)
        try:
            for attempt in range(RETRIES + 1):
                try:
                    await connection.send_packed_command(payload, check_health=False)
                    return [await _reply(connection) for _ in commands]
                except (Disconnected, TimedOut, OSError):
                    await connection.disconnect()
                    if attempt == RETRIES:
                        raise
                    await asyncio.sleep(RETRY_AFTER_S * (attempt + 1))
            raise AssertionError("unreachable")
        finally:
            # A send or read cut off (the bound ran out) has closed the connection (redis-py does, so
            # that no late reply is read as the next one's); the next send opens it again.
            self._idle.append(connection)


async def _reply(connection: Any) -> Any:
    try:
        return await connection.read_response()
    except (ReadOnlyError, BusyLoadingError, MasterDownError) as exc:
        # Not the primary (a failover behind a plain URL), or not ready: as a broken connection, so
        # that it is opened again (and the name resolved again), and the batch sent again.
        await connection.disconnect()
        raise Disconnected(f"Redis answered {type(exc).__name__}: {exc}") from None
    except ResponseError as exc:
        return exc
