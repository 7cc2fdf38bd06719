"""The API: `api` reads top to bottom as a request's way (SPEC §5).

method → parameters → public read, or: account → policy → [Idempotency-Key: the first answer again,
or] pre-trade checks → halt switch → dispatch (turn, nonce, signature, upstream) → EXMO's answer
unchanged. It only raises; middleware.py turns exceptions into answers. front.py calls it for the
daemon's listener, `handle_api` for a connection aiohttp serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

from proxy.audit.trail import CallRecord
from proxy.calls import idempotency
from proxy.calls.dispatch import Signed
from proxy.config.accounts import Account
from proxy.config.model import Config
from proxy.exmo.methods import is_public, is_valid_method
from proxy.policy import halt, pretrade, rules
from proxy.upstream.client import UpstreamResponse
from proxy.web import paper_calls
from proxy.web.call import Call, Reply
from proxy.web.errors import ProxyError
from proxy.web.inbound import read_params
from proxy.web.keys import CALL
from proxy.web.runtime import RUNTIME, Runtime


def resolve_account(config: Config, from_path: str | None, from_header: str | None) -> Account:
    if from_path and from_header and from_path != from_header:
        raise ProxyError(400, "account_conflict",
                         f"path names account {from_path!r} but X-Exmo-Account says {from_header!r}")
    name = from_path or from_header or config.default_account
    if name is None:
        raise ProxyError(400, "account_required",
                         f"several accounts are configured ({', '.join(config.accounts)}); choose one with"
                         " the X-Exmo-Account header or /accounts/<name>/v1.1/<method>")
    if name not in config.accounts:
        raise ProxyError(404, "unknown_account", f"no account named {name!r} in the config")
    return config.accounts[name]


def _method(named: str) -> str:
    method = named[:-1] if named.endswith("/") else named
    if not is_valid_method(method):
        raise ProxyError(400, "bad_method", "method names are lower-case words joined by _ or /")
    return method


def _pass_through(resp: UpstreamResponse) -> Reply:
    return Reply(resp.status, resp.body, resp.content_type)


async def api(runtime: Runtime, call: Call, version: str, named: str, path_account: str | None) -> Reply:
    """`/{version}/{named}` (or `/accounts/{path_account}/...`): EXMO's answer, or a refusal raised."""
    method = _method(named)
    call.exmo_method = method
    path = f"/{version}/{method}"
    if call.method not in ("GET", "HEAD", "POST"):
        raise ProxyError(405, "http_method_not_allowed", "use POST (or GET for public methods)")
    params = read_params(call.query, call.content_type, call.body)
    wait = _patience(call, runtime.config.limits.max_wait_s)
    if is_public(method):
        http_method = "POST" if call.method == "POST" else "GET"
        return _pass_through(await runtime.dispatcher.public(http_method, path, params, wait))
    if call.method != "POST":
        raise ProxyError(405, "post_required", f"{method} is a private method: send it with POST")
    account = resolve_account(runtime.config, path_account, call.headers.get("X-Exmo-Account"))
    call.account = account.name
    key, params = idempotency.take_key(call.headers.get(idempotency.HEADER), params)
    client = call.client
    record = CallRecord(call.request_id, client.name if client else None, account.name, method, params)
    with runtime.audit.call(record):
        rules.check(account, method, client)

        async def send(on_signed: Signed) -> UpstreamResponse:
            pretrade.check(account, method, params)
            coordinator = runtime.coordinator
            halt.check(runtime.config.state_dir, method, coordinator.halted if coordinator else None)
            if account.paper:  # answered here from the paper ledger: not signed, not sent
                record.paper = True
                return await paper_calls.answer(runtime.paper, runtime.metrics, account.name, method, params)
            return await runtime.dispatcher.private(account, path, params, wait, call.client_waiting,
                                                    on_signed)

        if key is None:
            record.response = await send(record.signed)
        else:  # a retry gets the first answer (a replay is not a trade: no pre-trade or halt check)
            # paper calls keep their records apart: a live call never replays a paper answer
            scope = ("paper:" if account.paper else "") + account.key
            record.response, record.replayed = await runtime.idempotency.call(
                key, scope, method, params, wait, send, record.signed)
    call.exmo_error = record.exmo()[1] or None
    reply = _pass_through(record.response)
    if record.replayed:
        reply.headers = REPLAYED
    return reply


REPLAYED: Mapping[str, str] = MappingProxyType({idempotency.REPLAYED_HEADER: "true"})


async def handle_api(request: web.Request) -> web.Response:
    """The API on aiohttp (a connection front.py handed over): the same `api`."""
    call = request[CALL]
    call.body = await request.read() if request.can_read_body else b""
    info = request.match_info
    reply = await api(request.app[RUNTIME], call, info["version"], info["method"], info.get("account"))
    return reply.response()


def _patience(call: Call, default_s: float) -> float:
    """How long this client will wait for its turn: X-Max-Wait-Ms, else limits.max_wait_s."""
    header = call.headers.get("X-Max-Wait-Ms")
    if header is None:
        return default_s
    if not header.isdigit() or int(header) > 600_000:
        raise ProxyError(400, "bad_header", "X-Max-Wait-Ms must be whole milliseconds, 0..600000")
    return int(header) / 1000
