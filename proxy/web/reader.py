"""Reading requests off one connection: httptools (llhttp) frames them, this checks their limits.

`RequestReader` is the reading half of connection.py's `Connection`: httptools calls the `on_*`
methods while `feed_data` runs, and each complete request becomes a `Call` handed to `_enqueue`; a
request refused while it is read is answered through `_last` (the limits: front.py's docstring).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httptools
from multidict import CIMultiDict

from proxy.exmo.refusals import error_body
from proxy.web.call import Call, Reply
from proxy.web.errors import router_error

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # the request line and all headers; with max_body, what one request may send
MAX_FIELD_BYTES = 8190  # the target, or one header: aiohttp's limits, as before this module
MAX_HEADERS = 128  # aiohttp's limit too

Queued = tuple[Call | None, Reply | None, bool, bool]  # a call or a final answer, keep-alive, HTTP/1.0


class _Malformed(Exception):
    """Raised by a callback: the request is refused with 400."""


class _Stop(Exception):
    """Raised by a callback: read nothing more (the last request is queued)."""


class RequestReader(asyncio.Protocol):
    """Requests in; what to do with them is the subclass's (`_enqueue`, `_last`, `_upgrade_request`,
    `_send_continue`)."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.last_active = time.monotonic()  # the last bytes in or answer out: the keep-alive clock
        self._done = False  # no more requests are read: the last one is queued, or the client left
        self._upgrade: bytes | None = None  # an upgrade request, to hand over after the answers before it
        self._continue_due = False
        self.on_message_begin()  # the state of the request being read
        self._in_message = False  # a request has begun and is not complete

    def _enqueue(self, item: Queued) -> None:
        raise NotImplementedError

    def _last(self, call: Call | None, reply: Reply) -> None:
        raise NotImplementedError

    def _upgrade_request(self, rest: bytes) -> None:
        raise NotImplementedError

    def _continue_now(self) -> None:
        """`Expect: 100-continue`: say so now if nothing is being answered, else after that."""
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        if self._upgrade is not None:  # after an upgrade head: aiohttp's, kept until it is handed over
            self._upgrade += data
            return
        if self._done:
            return
        self.last_active = time.monotonic()
        if self._in_message:
            self._message_bytes += len(data)
            if self._message_bytes > self.max_body + 2 * MAX_HEAD_BYTES:  # e.g. an endless header
                self._refuse(f"a request over {self.max_body + 2 * MAX_HEAD_BYTES} bytes")
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_request(data[upgrade.args[0]:])
        except httptools.HttpParserError as exc:
            raised = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else None
            if isinstance(raised, _Stop) or self._done:  # _done: bytes after `Connection: close`
                return
            if raised is not None and not isinstance(raised, _Malformed):
                log.error("internal error reading a request", exc_info=raised)
                self._last(None, Reply.json(error_body("internal", "internal error; see the log"), 500))
            else:
                self._refuse(str(raised or exc) or type(exc).__name__)

    def _refuse(self, reason: str) -> None:
        log.warning("refused a malformed request: %s", reason)
        self._last(None, Reply.json(error_body("bad_http", f"malformed HTTP request: {reason}"), 400))

    # --- httptools callbacks -------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_message = True
        self._head_done = False  # its head is in: what `on_header` reports now are trailers
        self._message_bytes = 0  # bytes read while it is in progress: a head that never ends is cut
        self._head_bytes = 0
        self._url = b""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if len(self._url) > MAX_FIELD_BYTES:
            raise _Malformed(f"the request target is over {MAX_FIELD_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a chunked body's trailer: not a header of the request (aiohttp's way too)
            return
        if len(name) + len(value) + 2 > MAX_FIELD_BYTES:
            raise _Malformed(f"a header is over {MAX_FIELD_BYTES} bytes")
        if len(self._headers) >= MAX_HEADERS:
            raise _Malformed(f"more than {MAX_HEADERS} headers")
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _Malformed(f"request line and headers over {MAX_HEAD_BYTES} bytes")
        # llhttp strips the whitespace before a value, not after it
        self._headers.add(name.decode("utf-8", "surrogateescape"),
                          value.rstrip(b" \t").decode("utf-8", "surrogateescape"))

    def on_headers_complete(self) -> None:
        self._head_done = True
        headers = self._headers
        hosts = len(headers.getall("Host", ()))
        if hosts > 1 or (hosts == 0 and self.parser.get_http_version() == "1.1"):  # RFC 9112 §3.2
            raise _Malformed("an HTTP/1.1 request needs exactly one Host header")
        if self.parser.should_upgrade():
            return
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_body:
            self._too_large = True
            self.on_message_complete()  # answered 413 unread
            raise _Stop
        if headers.get("Expect", "").lower() == "100-continue":
            self._continue_due = True
            self._continue_now()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body:  # chunked, over the limit: refused as it stands
            self._too_large = True
            self._body = []
            self.on_message_complete()
            raise _Stop
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return  # HttpParserUpgrade follows
        self._continue_due = self._in_message = self._head_done = False
        call = self._call()
        keep = self.parser.should_keep_alive() and not self._too_large
        if self._too_large:
            call.refused = router_error(413)
        if not keep:
            self._done = True  # nothing more is read: the connection closes after this answer
        self._enqueue((call, None, keep, self.parser.get_http_version() == "1.0"))

    def _call(self) -> Call:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        target = self._url.decode("utf-8", "surrogateescape")
        return Call(self.parser.get_method().decode("ascii", "replace"), target, self._headers, body,
                    self.remote, self.transport)
