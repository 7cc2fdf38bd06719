"""Running the daemon: bind, announce, wait for a signal, drain, exit (SPEC §2 `run`, §7).

SIGTERM/SIGINT stop accepting and let in-flight requests finish (bounded by the upstream timeout)
before the process exits 0. Nonce state needs no flush: it is made durable before it is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import importlib
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from proxy.config.checks import ConfigError
from proxy.config.model import Config
from proxy.ops.sdnotify import keep_watchdog_fed, notify, watchdog_interval
from proxy.web.app import apply_config, begin_drain, create_app, create_management_app, front_handler
from proxy.web.front import Front

log = logging.getLogger(__name__)


def loop_runner(choice: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """How `run` starts its event loop (config `event_loop`): uvloop when chosen or, for `auto`, when
    it is installed (`pip install 'exmo-signing-proxy[uvloop]'`); the standard asyncio loop otherwise."""
    if choice != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("event_loop: uvloop is not installed; pip install"
                                  " 'exmo-signing-proxy[uvloop]' or set event_loop: auto") from None
        else:
            return cast(Callable[[Coroutine[Any, Any, None]], None], uvloop.run)
    return asyncio.run


def _loop_name() -> str:
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def summary(config: Config) -> str:
    limits = config.limits
    return (
        f"exmo-proxy listening on {config.listen.url()} | accounts: {', '.join(config.accounts)}"
        f" (default: {config.default_account or 'none'}) | upstream: {config.upstream}"
        f" | state: {config.state_dir} | rate: {limits.rate_per_second:g}/s,"
        f" timeout {limits.upstream_timeout_s:g}s | loop: {_loop_name()}"
        + (f" | management: {config.management_listen.url()}" if config.management_listen else "")
    )


def _remove_stale_socket(path: str) -> None:
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody answers: a leftover from a crash
            return
    raise OSError(errno.EADDRINUSE, f"another process is listening on {path}")


async def start_listening(front: Front, config: Config) -> None:
    listen = config.listen
    if listen.unix_path:
        _remove_stale_socket(listen.unix_path)
        Path(listen.unix_path).parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o777 & ~config.socket_mode)  # born with its mode: no window with more access
        try:
            await front.listen_unix(listen.unix_path)
        finally:
            os.umask(old_umask)
        os.chmod(listen.unix_path, config.socket_mode)
    else:
        await front.listen_tcp(listen.host, listen.port)


Reloader = Callable[[], Config]


async def reload(app: web.Application, reloader: Reloader | None) -> None:
    """SIGHUP: read and decrypt the config again; swap it in whole, or keep the old one and say why."""
    if reloader is None:
        log.warning("SIGHUP: this daemon cannot reload (no config file); restart to apply changes")
        return
    try:
        new = await asyncio.to_thread(reloader)  # the KDF takes a moment: not on the event loop
    except Exception as exc:
        log.error("SIGHUP: reload refused, still running the previous config: %s", _reason(exc))
        return
    kept = apply_config(app, new)
    log.info("SIGHUP: config reloaded: accounts %s; clients %s", ", ".join(new.accounts),
             ", ".join(new.clients) or "none")
    if kept:
        log.warning("SIGHUP: %s changed but only take effect after a restart", ", ".join(kept))


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _install_signals(stop: asyncio.Event, on_hup: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)


def freeze_startup_heap() -> None:
    """What start-up built (modules, classes, the apps, the config) lives as long as the process: after
    one collection it is moved out of the collector's reach (gc.freeze), so a full collection under
    load scans only what calls created since instead of ~40,000 objects more (about 10 ms of pause
    per full collection here; issue 15). Costs one collection before READY."""
    gc.collect()
    gc.freeze()


async def serve(config: Config, on_ready: Callable[[], None] | None = None,
                stop: asyncio.Event | None = None, reloader: Reloader | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then drain and return; SIGHUP reloads."""
    stop = stop or asyncio.Event()
    app = create_app(config)
    pending: set[asyncio.Task[None]] = set()
    one_at_a_time = asyncio.Lock()  # two SIGHUPs: the later read of the file is applied last

    async def serial_reload() -> None:
        async with one_at_a_time:
            await reload(app, reloader)

    def on_hup() -> None:
        task = asyncio.ensure_future(serial_reload())
        pending.add(task)
        task.add_done_callback(pending.discard)

    _install_signals(stop, on_hup)
    # The drain (begin_drain) answers everything within the grace; a call sent just before SIGTERM may
    # need its whole upstream timeout. Past this, what is left is cancelled.
    patience = max(config.shutdown_grace_s, config.limits.upstream_timeout_s) + 1
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=patience)
    await runner.setup()  # aiohttp serves the WebSocket upgrades front.py hands it (runner.server)
    assert runner.server is not None
    front = Front(front_handler(app), runner.server, config.limits.max_body_bytes)
    extra: list[web.AppRunner] = []
    try:
        await start_listening(front, config)
        if config.management_listen is not None:
            management = web.AppRunner(create_management_app(app), access_log=None, handle_signals=False)
            await management.setup()
            extra.append(management)
            where = config.management_listen
            await web.TCPSite(management, where.host, where.port, reuse_address=True).start()
        freeze_startup_heap()
        print(summary(config), file=sys.stderr, flush=True)
        notify("READY=1", f"STATUS=listening on {config.listen.url()}")
        interval = watchdog_interval()
        if interval:
            watchdog = asyncio.ensure_future(keep_watchdog_fed(interval))
            pending.add(watchdog)
        if on_ready:
            on_ready()
        await stop.wait()
        notify("STOPPING=1", "STATUS=draining in-flight calls")
        log.info("stopping: no new connections; calls already inside are sent while their answer fits in"
                 " %gs (shutdown_grace_s), later ones get 503 unsent", config.shutdown_grace_s)
        begin_drain(app)
    finally:
        # stop listening at once, then wait for the calls and streams inside, all within `patience`
        await asyncio.gather(front.shutdown(patience), runner.server.shutdown(patience))
        await runner.cleanup()  # then the app's parts
        for task in list(pending):  # the watchdog kept running during the drain
            task.cancel()
        for other in extra:  # last: probes see "draining" until the end
            await other.cleanup()
        if config.listen.unix_path:
            with contextlib.suppress(OSError):
                os.unlink(config.listen.unix_path)
    log.info("stopped")
