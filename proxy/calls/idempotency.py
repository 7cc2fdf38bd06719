"""`Idempotency-Key`: a retried call gets the first call's answer, never a second execution (SPEC §5).

The header follows draft-ietf-httpapi-idempotency-key-header (and Stripe, whose API bot authors know);
a library that sends the same headers with every request (ccxt) passes it as the `idempotency_key`
parameter instead, which is taken out before the call is signed.
A key belongs to an account; the call it names is fingerprinted by method and parameters. For a key:

- first seen: recorded pending (durably, idempotency_store.py) before the call is signed, then sent; its
  answer is kept for `idempotency_ttl_s`, also an "outcome unknown" 502/504: a retry must not order
  twice because the first answer was lost. A call refused before it was sent (rate limit, shutdown,
  unreachable upstream, a policy check) leaves no record, so its retry is a new call; so does EXMO's own
  "not executed" (40009 after its retry, 40034).
- retried with the same fingerprint: the first answer, byte for byte, marked `Idempotent-Replayed`;
  while the first is still in flight the retry waits for its answer, within its own patience (else 409
  `idempotency_in_flight`). A record left pending by a daemon that stopped mid-call (kill -9, power cut
  after the write) is answered 502 "outcome unknown", and that becomes its answer: it is never sent.
- retried with another method or other parameters: 422 `idempotency_mismatch`, not sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.calls.dispatch import NotSent
from proxy.calls.idempotency_store import Answer, Record
from proxy.calls.nonce_store import NonceStateError
from proxy.calls.ratelimit import RateLimited
from proxy.calls.records import Records
from proxy.exmo.answers import nonce_rejection, rate_limit_pause
from proxy.exmo.refusals import Refusal, error_body
from proxy.exmo.signing import Params
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import UNKNOWN_HINT, UpstreamError, UpstreamResponse

HEADER = "Idempotency-Key"
PARAM = "idempotency_key"  # the same, as a parameter: what a library that cannot set a header per call sends
REPLAYED_HEADER = "Idempotent-Replayed"
JSON = "application/json; charset=utf-8"

NOT_SENT = (NotSent, RateLimited, NonceStateError)  # refusals raised before anything is written upstream

Signed = Callable[[int], None]
Send = Callable[[Signed], Awaitable[UpstreamResponse]]


class IdempotencyRefusal(Refusal):
    """A keyed call that is refused without being sent."""


def check_key(value: str) -> str:
    """The header's value: 1 to 255 visible ASCII characters (draft §2), else a 400."""
    if not 0 < len(value) <= 255 or not all("!" <= c <= "~" for c in value):
        raise IdempotencyRefusal(f"{HEADER} must be 1 to 255 visible ASCII characters, e.g. a UUID",
                                 status=400, slug="bad_idempotency_key")
    return value


def take_key(header: str | None, params: Params) -> tuple[str | None, Params]:
    """The call's key (header, or the `idempotency_key` parameter, which is never sent to EXMO) and the
    parameters without it; both given and different is a 400."""
    found = [value for name, value in params if name == PARAM]
    if not found:
        return header, params
    if header is not None and header != found[0]:
        raise IdempotencyRefusal(f"the {HEADER} header and the {PARAM} parameter differ; send one of them",
                                 status=400, slug="bad_idempotency_key")
    return found[0], tuple((name, value) for name, value in params if name != PARAM)


def scope_of(api_key: str, key: str) -> str:
    """Where a key's record lives: per EXMO API key (two account names for one key, or an account
    renamed, share their records), hashed (a key is the client's text, of any shape)."""
    return hashlib.sha256(f"{api_key}\0{key}".encode()).hexdigest()[:32]


def fingerprint(method: str, params: Params) -> str:
    """Method and parameters (names are unique, so their order does not matter): the same call sent
    again has the same fingerprint."""
    canonical = json.dumps([method, sorted(params)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _refused_by_exmo(response: UpstreamResponse) -> bool:
    """EXMO's own "not executed" answers: a rejected nonce (40009) or its rate limit (40034)."""
    return nonce_rejection(response) is not None or rate_limit_pause(response) is not None


def _error_answer(status: int, slug: str, message: str) -> Answer:
    return Answer(status, json.dumps(error_body(slug, message)).encode(), JSON)


def _unknown(why: str) -> Answer:
    return _error_answer(502, "outcome_unknown", f"{why}; outcome unknown: {UNKNOWN_HINT}. A retry with this"
                                                 f" {HEADER} gets this answer again and is never sent")


@dataclass
class _Flight:
    fingerprint: str
    done: asyncio.Future[Answer | None]  # None: the call was not sent, a retry may send it


class Idempotency:
    """Keyed private calls of one running daemon."""

    def __init__(self, store: Records, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self._flights: dict[str, _Flight] = {}

    def reconfigure(self, ttl_s: float) -> None:
        """A reload's `idempotency_ttl_s`, for every record from now on (kept ones too)."""
        self.store.reconfigure(ttl_s)

    async def call(self, key: str, api_key: str, method: str, params: Params, patience_s: float,
                   send: Send, on_signed: Signed) -> tuple[UpstreamResponse, bool]:
        """The answer for this keyed call on the account with `api_key`, and whether it is a replay."""
        scope, print_ = scope_of(api_key, check_key(key)), fingerprint(method, params)
        while True:
            flight = self._flights.get(scope)
            if flight is None:
                break
            _same_call(flight.fingerprint, print_)
            answer = await self._wait(flight, patience_s)
            if answer is not None:
                return self._replay(answer)
        first = await self._first(scope, print_, send, on_signed)
        if isinstance(first, UpstreamResponse):
            return first, False
        # a record exists: an earlier call's (or, in Redis mode, another daemon's now)
        return self._replay(await self._recorded(scope, first, print_, patience_s))

    async def _recorded(self, scope: str, record: Record, print_: str, patience_s: float) -> Answer:
        """The answer a retry gets from a record: its answer; while another daemon's call is still in
        flight (Redis mode), that answer when it comes; a record left pending, "outcome unknown"."""
        _same_call(record.fingerprint, print_)
        deadline = time.monotonic() + patience_s
        while record.answer is None and record.busy_until > time.time():
            if time.monotonic() >= deadline:
                raise _in_flight(patience_s)
            await asyncio.sleep(0.05)
            found = await self.store.get(scope)
            if found is None:  # that call was not sent after all: this one is a new call
                raise IdempotencyRefusal(f"the first call with this {HEADER} was not sent; send again",
                                         status=409, slug="idempotency_in_flight")
            record = found
        if record.answer is not None:
            return record.answer
        # pending, and no call of ours in flight: the daemon stopped in between
        answer = _unknown("the first call with this key was signed, and the daemon stopped before EXMO's"
                          " answer arrived")
        await self.store.complete(scope, answer)
        return answer

    async def _first(self, scope: str, print_: str, send: Send, on_signed: Signed,
                     ) -> UpstreamResponse | Record:
        # Recorded before anything is signed: a store that cannot write refuses the call, unsent.
        existing = await self.store.begin(scope, print_)
        if existing is not None:
            return existing
        flight = self._flights[scope] = _Flight(print_, asyncio.get_running_loop().create_future())
        signed = False

        def signing(nonce: int) -> None:
            nonlocal signed
            signed = True
            on_signed(nonce)

        answer: Answer | None = None
        try:
            response = await send(signing)
            if not _refused_by_exmo(response):  # else a definite "not executed": a retry may send it
                answer = Answer(response.status, response.body, response.content_type)
            return response
        except UpstreamError as exc:
            if exc.sent:
                answer = _error_answer(exc.status, exc.slug, exc.explain())
            raise
        except NOT_SENT:
            raise  # refused before it went out (after a 40009, which EXMO did not execute, too)
        except BaseException:
            if signed:  # signed, then interrupted: it may have reached EXMO
                answer = _unknown("the first call with this key was signed and then interrupted")
            raise
        finally:
            del self._flights[scope]
            try:
                if answer is None:
                    await self.store.release(scope)
                else:
                    await self.store.complete(scope, answer)
            finally:
                flight.done.set_result(answer)  # waiters are answered whatever the store does

    async def _wait(self, flight: _Flight, patience_s: float) -> Answer | None:
        try:
            async with asyncio.timeout(patience_s):
                return await asyncio.shield(flight.done)
        except TimeoutError:
            raise _in_flight(patience_s) from None

    def _replay(self, answer: Answer) -> tuple[UpstreamResponse, bool]:
        self.metrics.idempotent_replay()
        return UpstreamResponse(answer.status, answer.body, answer.content_type), True


def _in_flight(patience_s: float) -> IdempotencyRefusal:
    return IdempotencyRefusal(f"a call with this {HEADER} is still in flight and did not finish within"
                              f" {patience_s:g}s; retry later to get its answer (it will not be sent twice)",
                              status=409, slug="idempotency_in_flight")


def _same_call(recorded: str, presented: str) -> None:
    if recorded != presented:
        raise IdempotencyRefusal(f"this {HEADER} was used for a different call (another method or other"
                                 " parameters); use a new key for a new call. Nothing was sent",
                                 status=422, slug="idempotency_mismatch")
