"""`Call` and `Reply`: one HTTP request and its answer, whichever server read it.

The daemon's listener is front.py (httptools, the fast path for every plain HTTP request); aiohttp
serves the WebSocket upgrades it is handed, and `management_listen`. The API, the probes, the gate,
the error answers and the access line all work on these two plain objects, so both servers give the
same answers through the same code. A `Call` also collects what the daemon learned on the way (request
id, client, account, EXMO method and error) for the access line and the metrics.
"""

from __future__ import annotations

import asyncio
import http
import json
import time
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from proxy.config.clients import Client
from proxy.exmo.refusals import NO_HEADERS, Refusal

JSON = "application/json; charset=utf-8"  # as aiohttp's json_response says it
NO_TYPE = "application/octet-stream"  # what a request without Content-Type is taken as (as aiohttp does)


class Call:
    """A request's facts (`method`, `target` as sent, decoded `path`, raw `query`, `headers`, `body`,
    `remote` address, `transport`) and what its handling found out."""

    __slots__ = (
        "account",
        "body",
        "client",
        "exmo_error",
        "exmo_method",
        "headers",
        "method",
        "path",
        "query",
        "raw_path",
        "refused",
        "refused_by",
        "remote",
        "request_id",
        "route",
        "started",
        "target",
        "transport",
    )

    def __init__(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                 remote: str | None, transport: asyncio.BaseTransport | None) -> None:
        self.method, self.target, self.headers, self.body = method, target, headers, body
        self.remote, self.transport = remote, transport
        self.raw_path, self.query, self.path, self.route = split_target(target)
        self.refused: Refusal | None = None  # found while reading it (a body over the limit): the answer
        self.started = time.monotonic()
        self.request_id = ""
        self.client: Client | None = None
        self.account: str | None = None
        self.exmo_method: str | None = None
        self.exmo_error: str | None = None
        self.refused_by: str | None = None

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters."""
        value = self.headers.get("Content-Type")
        return value.partition(";")[0].strip().lower() if value else NO_TYPE

    def client_waiting(self) -> bool:
        """The client's connection is still open (a call that waited for its turn is not sent to a
        client that hung up)."""
        transport = self.transport
        return transport is not None and not transport.is_closing()

    @classmethod
    def of(cls, request: web.Request, body: bytes = b"") -> Call:
        """The facts of a request aiohttp read (its body, if any, is read by the handler)."""
        headers: CIMultiDictProxy[str] = request.headers
        return cls(request.method, request.raw_path, headers, body, request.remote, request.transport)


def split_target(target: str) -> tuple[str, str, str, str]:
    """(raw path, raw query string, decoded path, path to route on) of a request-target: origin-form
    `/p?q` or absolute-form `http://host/p?q`, decoded as aiohttp does (yarl, no dot-segment folding;
    routes are matched with `%2F` and `%25` still encoded, so `/v1.1%2Fx` is not `/v1.1/x`)."""
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
        raw_path = raw_path.partition("#")[0]
        query = query.partition("#")[0]
        if "%" not in raw_path:
            return raw_path, query, raw_path, raw_path
        url = URL.build(path=raw_path, encoded=True)
        return raw_path, query, url.path, url.path_safe
    try:
        url = URL(target, encoded=True)
    except ValueError:
        return target, "", target, target
    return url.raw_path, url.raw_query_string, url.path, url.path_safe


class Reply:
    """An answer: status, body, its media type and any other headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(self, status: int, body: bytes, content_type: str | None = JSON,
                 headers: Mapping[str, str] = NO_HEADERS) -> None:
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers

    @classmethod
    def json(cls, doc: Any, status: int = 200, headers: Mapping[str, str] = NO_HEADERS) -> Reply:
        return cls(status, json.dumps(doc).encode(), JSON, headers)

    def http1(self, request_id: str, keep_alive: bool, head_only: bool, http10: bool = False) -> bytes:
        """The answer as HTTP/1.1 bytes (front.py): status line, headers, and the body unless HEAD;
        `http10`: the request was HTTP/1.0, whose keep-alive is said, not assumed."""
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Unknown')}\r\nDate: {_date()}\r\n"
                 "Server: exmo-proxy\r\n"]
        if self.status >= 200 and self.status not in (204, 304):  # RFC 9110 §8.6
            lines.append(f"Content-Length: {len(self.body)}\r\n")
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}\r\n")
        if request_id:
            lines.append(f"X-Request-Id: {request_id}\r\n")
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers.items())
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif http10:
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("utf-8", "surrogateescape")
        return head if head_only else head + self.body

    def response(self) -> web.Response:
        """The same answer for aiohttp."""
        response = web.Response(status=self.status, body=self.body, headers=self.headers)
        if self.content_type:
            response.headers["Content-Type"] = self.content_type
        return response


_REASONS: dict[int, str] = {status.value: status.phrase for status in http.HTTPStatus}
_REASONS[499] = "Client Closed Request"
_stamp: list[Any] = [0, ""]


def _date() -> str:
    """The Date header, made once per second."""
    now = int(time.time())
    if _stamp[0] != now:
        _stamp[0], _stamp[1] = now, formatdate(now, usegmt=True)
    return str(_stamp[1])
