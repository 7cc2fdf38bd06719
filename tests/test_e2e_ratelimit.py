"""The outbound rate limit against a simulator that enforces EXMO's 10 requests/s (exmo-api.md §5)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.conftest import Stack, curl_json

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


@pytest.mark.parametrize("style", ["40034", "retry_after"])
def test_exmo_rate_limit_answer_pauses_all_sending(make_stack, style: str) -> None:  # type: ignore[no-untyped-def]
    """After EXMO's rate-limit answer, nothing is sent for the time it names; clients get 429."""
    stack: Stack = make_stack(sim_rate=5, rate=1000, sim_style=style)  # a proxy set faster than EXMO
    answers = [curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST") for _ in range(12)]
    limited = [body for status, body in answers if status == 200 and body.get("result") is False]
    assert limited, "the simulator never answered with its rate limit"
    assert any(status == 429 for status, _ in answers), "the proxy kept sending after EXMO's answer"
    sent_before = sum(stack.sim_stats()["executed"].values()) + sum(stack.sim_stats()["errors"].values())
    status, body = curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")
    assert (status, body["proxy_error"]) == (429, "rate_limited") and "pause" in body["error"]
    after = sum(stack.sim_stats()["executed"].values()) + sum(stack.sim_stats()["errors"].values())
    assert after == sent_before, "a request reached EXMO during the pause"
    ready = curl_json(f"{stack.base}/readyz")[1]
    assert ready["exmo_rate_limit_pause_s"] > 40
    assert "sending paused" in stack.logs()


def test_client_patience_header(make_stack) -> None:  # type: ignore[no-untyped-def]
    """X-Max-Wait-Ms: 0 turns a wait into an immediate 429 with Retry-After; junk is a 400."""
    stack: Stack = make_stack(rate=1)  # one call per 1.1 s
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    status, body = curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", "-H", "X-Max-Wait-Ms: 0")
    assert (status, body["proxy_error"]) == (429, "rate_limited")
    status, body = curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", "-H", "X-Max-Wait-Ms: soon")
    assert (status, body["proxy_error"]) == (400, "bad_header")
    assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST", "-H", "X-Max-Wait-Ms: 5000")[0] == 200


def test_per_account_rate(make_stack) -> None:  # type: ignore[no-untyped-def]
    """accounts.NAME.rate_per_second paces that account below the shared limit."""
    stack: Stack = make_stack(rate=1000)
    text = stack.config.read_text().replace("    key: K-", "    rate_per_second: 2\n    key: K-")
    stack.config.write_text(text)
    stack.restart_daemon()
    started = time.monotonic()
    for _ in range(5):
        assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    assert time.monotonic() - started >= 4 * 1.1 / 2 - 0.05  # four gaps of 1.1/rate: never faster


async def _offer(base: str, per_second: float, seconds: float) -> list[tuple[int, dict[str, Any]]]:
    """One bot offering `per_second` private calls for `seconds`, each with a 2 s patience."""
    async with aiohttp.ClientSession() as session:
        async def one() -> tuple[int, dict[str, Any]]:
            async with session.post(f"{base}/v1.1/user_info", headers={"X-Max-Wait-Ms": "2000"}) as resp:
                return resp.status, await resp.json(content_type=None)

        tasks = []
        for _ in range(int(per_second * seconds)):
            tasks.append(asyncio.ensure_future(one()))
            await asyncio.sleep(1 / per_second)
        return list(await asyncio.gather(*tasks))


def test_three_bots_at_30_per_second_never_see_40034(make_stack) -> None:  # type: ignore[no-untyped-def]
    """3 bots offering 30 calls/s in all, EXMO allowing 10/s: clients get data or 429, never 40034."""
    stack: Stack = make_stack(sim_rate=10, rate=10)

    async def run() -> list[tuple[int, dict[str, Any]]]:
        bots = await asyncio.gather(*(_offer(stack.base, 10, 4) for _ in range(3)))
        return [answer for bot in bots for answer in bot]

    answers = asyncio.run(run())
    assert len(answers) == 120
    served = [body for status, body in answers if status == 200]
    refused = [body for status, body in answers if status == 429]
    assert len(served) + len(refused) == 120
    assert not [b for b in served if b.get("result") is False], "EXMO's rate limit reached a client"
    assert stack.sim_stats()["errors"].get("40034", 0) == 0
    assert 25 <= len(served) <= 70  # ~9/s for 4-6 s: the limiter, not the bots, set the pace
