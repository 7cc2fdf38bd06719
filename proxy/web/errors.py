"""The one place an exception becomes an answer: a non-200 status and an EXMO-shaped JSON body.

Every refusal of ours is a `Refusal` (exmo/refusals.py) and carries its status and slug; aiohttp's
router errors and a client that hung up are mapped here too. Anything else is a bug: logged with its
traceback, answered 500 without details.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

from proxy.exmo.refusals import NO_HEADERS, Refusal, error_body
from proxy.policy.rules import PolicyDenied
from proxy.web.call import Call, Reply

log = logging.getLogger(__name__)


class ProxyError(Refusal):
    """A refusal of the web layer's own (account choice, headers, authentication)."""

    def __init__(self, status: int, slug: str, message: str) -> None:
        super().__init__(message, status=status, slug=slug)

    @property
    def headers(self) -> Mapping[str, str]:
        return _UNAUTHORIZED if self.status == 401 else NO_HEADERS


_UNAUTHORIZED: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": "Bearer"})  # RFC 6750 §3


def error_response(status: int, slug: str, message: str, headers: Mapping[str, str] = NO_HEADERS) -> Reply:
    return Reply.json(error_body(slug, message), status, headers)


_ROUTER_ERRORS = {
    404: ("unknown_route", "no such route; use POST /v1.1/<method> (or /accounts/<name>/v1.1/<method>)"),
    405: ("http_method_not_allowed", "HTTP method not allowed here"),
    413: ("body_too_large", "the body is larger than limits.max_body_bytes"),
}


def router_error(status: int) -> ProxyError:
    """No route for the path (404), not with this HTTP method (405), a body over the limit (413): the
    answers aiohttp's router and body reader give, from either server."""
    return ProxyError(status, *_ROUTER_ERRORS[status])


def answer_for(exc: Exception, call: Call) -> Reply:
    """The answer to a request whose handling raised `exc` (a policy refusal is noted on `call`)."""
    if isinstance(exc, Refusal):
        if isinstance(exc, PolicyDenied):
            call.refused_by = exc.slug
        return error_response(exc.status, exc.slug, exc.explain(), exc.headers)
    if isinstance(exc, ConnectionResetError):  # the client hung up while sending its body
        return error_response(499, "client_gone", "the client disconnected before its request was read")
    if isinstance(exc, web.HTTPException) and exc.status in _ROUTER_ERRORS:
        return error_response(exc.status, *_ROUTER_ERRORS[exc.status])
    if isinstance(exc, web.HTTPException):
        return error_response(exc.status, "http_error", exc.reason, _UNAUTHORIZED if exc.status == 401
                              else NO_HEADERS)
    log.error("internal error handling a request: %s", type(exc).__name__, exc_info=exc)
    return error_response(500, "internal", "internal error; see the daemon log")
