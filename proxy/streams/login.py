"""The daemon's login on a private stream: under the key's turn, with a nonce from its REST sequence.

Whether EXMO's WebSocket login shares the REST nonce counter is unconfirmed (exmo-api.md §6.1), so the
login is ordered like a signed REST call (calls/nonce.py): the key's turn is taken before the nonce is
drawn and held until EXMO answers, and a 40009 moves the sequence above the nonce EXMO names and is
tried once more. Every attempt leaves an audit entry (`ws/login`: client, account, nonce, outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import WSMsgType

from proxy.calls.nonce import NonceSequence
from proxy.config.accounts import Account
from proxy.exmo.answers import nonce_rejected_text
from proxy.exmo.refusals import Refusal
from proxy.streams import frames
from proxy.streams.parts import Context, Ended, Who


class Login:
    """One stream's login upstream; `nonce` is the last one used (None if none was drawn)."""

    def __init__(self, who: Who, account: Account, upstream: aiohttp.ClientWebSocketResponse,
                 context: Context, forward: Callable[[str], Awaitable[None]]) -> None:
        self.who, self.account, self.upstream, self.context = who, account, upstream, context
        self._forward = forward  # what comes before EXMO's answer (its greeting) goes to the client
        self._started = time.monotonic()
        self.nonce: int | None = None

    async def run(self) -> None:
        """Log in; Ended (the client's socket is then closed with its code and reason) if that fails."""
        context, account = self.context, self.account
        sequence = context.nonces.sequence(account.key)
        try:
            await sequence.lock.acquire(context.max_wait_s)
        except TimeoutError:
            self._outcome("not_sent")
            raise Ended(1013, f"account {account.name} is busy: its calls go to EXMO one at a time and the"
                              " queue did not move; try again", "login_failed") from None
        except Refusal as exc:  # the daemon is shutting down (Turn.stop)
            self._outcome("not_sent")
            raise Ended(1001, exc.explain(), "shutdown") from None
        try:
            for attempt in (1, 2):
                answer = await self._once(sequence)
                self._outcome("logged_in" if answer.ok else "refused", answer.code)
                if answer.ok:
                    return
                used = nonce_rejected_text(answer.code, answer.message)
                if used is not None and attempt == 1:  # another program used the key: once above it
                    sequence.observe(used)
                    context.metrics.nonce_resync()
                    continue
                raise Ended(1011, f"EXMO refused the login of account {account.name}: {answer.message}"
                                  f" (code {answer.code})", "login_failed")
        finally:
            sequence.lock.release()

    async def _once(self, sequence: NonceSequence) -> frames.LoginAnswer:
        context = self.context
        try:
            context.audit.ensure_writable()
            self.nonce = await sequence.next()
        except Refusal as exc:  # the audit log or the nonce state cannot be written: no login
            self._outcome("not_sent")
            raise Ended(1011, exc.explain(), "login_failed") from None
        try:
            await self.upstream.send_str(frames.login(self.account.key, self.account.secret.encode(),
                                                      self.nonce))
            answer = await self._answer(context.upstream_timeout_s)
        except (aiohttp.ClientError, OSError):
            answer = None
        if answer is None:
            self._outcome("unknown")
            raise Ended(1013, f"EXMO did not answer the login within {context.upstream_timeout_s:g}s; try"
                              " again", "login_failed")
        return answer

    async def _answer(self, timeout_s: float) -> frames.LoginAnswer | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                async for message in self.upstream:
                    if message.type is not WSMsgType.TEXT:
                        continue
                    answer = frames.login_answer(message.data)
                    if answer is not None:
                        return answer
                    await self._forward(message.data)
        return None

    def _outcome(self, outcome: str, code: int | None = None) -> None:
        """Each login attempt's end: its audit entry and its count, together."""
        self.context.metrics.stream_login(outcome)
        self.context.audit.stream_event(
            request_id=self.who.request_id, client=self.who.client, account=self.account.name,
            method="ws/login", params=(("path", self.who.path),), nonce=self.nonce, outcome=outcome,
            exmo_error_code=None if code is None else str(code), seconds=time.monotonic() - self._started)
