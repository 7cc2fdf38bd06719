"""The outbound rate limit against a simulator that enforces EXMO's 10 requests/s (exmo-api.md §5)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.slow


async def _bot(base: str, calls: int) -> list[dict[str, Any]]:
    answers = []
    async with aiohttp.ClientSession() as session:
        for i in range(calls):
            ticker = i % 2
            request = session.get(f"{base}/v1.1/ticker") if ticker else session.post(f"{base}/v1.1/user_info")
            async with request as resp:
                assert resp.status == 200, await resp.text()
                answers.append(await resp.json(content_type=None))
    return answers


async def _bots(base: str, bots: int, calls: int) -> list[dict[str, Any]]:
    results = await asyncio.gather(*(_bot(base, calls) for _ in range(bots)))
    return [answer for answers in results for answer in answers]


def test_default_rate_never_trips_exmos_limit(make_stack) -> None:  # type: ignore[no-untyped-def]
    """5 bots racing public and private calls at the defaults (10/s both sides): no 40034."""
    stack: Stack = make_stack(sim_rate=10, rate=10)
    answers = asyncio.run(_bots(stack.base, bots=5, calls=6))
    assert len(answers) == 30
    assert not [a for a in answers if a.get("result") is False], "a call hit EXMO's rate limit"
    assert stack.sim_stats()["errors"].get("40034", 0) == 0
