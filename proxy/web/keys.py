"""Where the web layer keeps things: the config in force and a request's facts, under typed keys.

Keys of a component live beside it (`RUNTIME` in runtime.py, `ACCOUNTING` in access.py); these are
the ones several modules share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from proxy.config.model import Config
from proxy.telemetry.metrics import Metrics
from proxy.web.call import Call


@dataclass
class Live:
    """The config in force; SIGHUP swaps it in one assignment (runtime.py)."""

    config: Config


Clock = Callable[[], int]

LIVE = web.AppKey("live", Live)
METRICS = web.AppKey("metrics", Metrics)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
MAIN = web.AppKey("main", web.Application)  # on a management app: the daemon's app it reports on

CALL = web.RequestKey("call", Call)  # a request aiohttp serves, as the API and the access log see it
