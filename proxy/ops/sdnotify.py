"""systemd's notify protocol in pure Python: READY=1, STOPPING=1, STATUS=, WATCHDOG=1.

With `Type=notify` systemd waits for READY=1, sent only once the listener is bound, so units that
order After= this one start when it really answers. With `WatchdogSec=` systemd sets WATCHDOG_USEC
and kills the daemon if WATCHDOG=1 stops arriving; the pings come from a task on the event loop, so
a stuck loop — the failure that matters — stops them. Without NOTIFY_SOCKET every call is a no-op.
See sd_notify(3); the protocol is one datagram of newline-separated assignments.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*assignments: str) -> bool:
    """Send `assignments` to $NOTIFY_SOCKET; False when there is none or it fails."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(assignments).encode())
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", address, exc.strerror or exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of WATCHDOG_USEC in seconds, if the watchdog is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def keep_watchdog_fed(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
