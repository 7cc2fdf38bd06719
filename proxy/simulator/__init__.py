"""An EXMO-compatible exchange simulator: signs, nonces, rate limits and errors as in exmo-api.md.

Public interface: ``SimulatorConfig``, ``DEMO_KEY``/``DEMO_SECRET``, ``load_accounts_file``,
``create_simulator_app`` and ``serve_simulator`` (run until the task is cancelled).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from proxy.simulator.app import create_simulator_app
from proxy.simulator.config import DEMO_KEY, DEMO_SECRET, SimulatorConfig, load_accounts_file

__all__ = [
    "DEMO_KEY",
    "DEMO_SECRET",
    "SimulatorConfig",
    "create_simulator_app",
    "load_accounts_file",
    "serve_simulator",
]

log = logging.getLogger(__name__)


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_simulator(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve the simulator on ``host:port`` until cancelled, then clean up."""
    runner = web.AppRunner(create_simulator_app(config))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port  # real port when port=0
        log.info("simulator listening on %s", _url(host, bound))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
