"""Reading one HTTP/1.1 answer from the bytes as they arrive (the upstream client, wire.py).

The parsing is httptools' (llhttp: the parser of Node.js, behind uvicorn), strict: status line, header
syntax (no bare CR, no obs-fold), framing by Content-Length or chunked transfer coding (both at once,
two lengths, or a bad chunk size are refused), interim 1xx answers. What this module adds is what the
daemon needs on top: every size bounded — the head at 64 KiB however the bytes arrive, the body at
`max_bytes` raw and decoded — so a hostile or broken peer cannot make the daemon buffer without limit;
a close-delimited answer completed at EOF; gzip and deflate decoded; and a connection reused only when
every `Connection` header allows it and nothing followed the answer. Anything that is not a well-formed
answer raises Malformed.
"""

from __future__ import annotations

import re
import zlib

import httptools

MAX_HEAD_BYTES = 64 * 1024
FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB and obs-text (UTF-8 bytes) are allowed


class Malformed(Exception):
    pass


class AnswerReader:
    """Parses one answer from the bytes fed to it; `done` when complete."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self.done = False
        # The parser holds our callbacks and we hold it: a reference cycle, broken when the answer
        # is complete so that each answer is freed at once, not by the cyclic garbage collector.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._body = bytearray()
        self._head_bytes = 0
        self._framed = False  # Content-Length or chunked: not delimited by the close
        self._close = False  # a Connection header said close
        self._in_body = False
        self._head_fed = 0  # bytes fed before the head was complete
        self._problem: Malformed | None = None  # raised by a callback; httptools wraps it

    # --- feeding --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.done:
            self.keep_alive = False  # bytes nobody asked for: do not reuse this connection
            return
        if not self._in_body:
            self._head_fed += len(data)
        parser = self._parser
        if parser is None:  # a failed answer fed again: nothing more to read
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self.done:  # a complete answer, then a 101 nobody asked for: keep the answer
                self.keep_alive = False
                return
            raise Malformed("the server switched protocols") from None
        except httptools.HttpParserError as exc:
            if self.done:  # the answer was complete; what follows it is not ours to read
                self.keep_alive = False
                return
            raise self._problem or Malformed(_reason(exc)) from None
        if not self._in_body and self._head_fed > MAX_HEAD_BYTES:  # one header line growing without end
            raise Malformed("the answer's header is larger than 64 KiB")

    def finish_at_eof(self) -> bool:
        """The peer closed: complete if the answer was delimited by that."""
        if self._in_body and not self._framed and not self.done:
            self.done, self.keep_alive = True, False
        return self.done

    def body(self) -> bytes:
        coding = self.headers.get("content-encoding", "identity").lower()
        if coding in ("identity", "") or not self._body:  # an empty body has nothing to decode
            return bytes(self._body)
        if coding in ("gzip", "x-gzip"):
            return self._inflate(zlib.decompressobj(16 + zlib.MAX_WBITS))
        if coding == "deflate":
            try:
                return self._inflate(zlib.decompressobj(zlib.MAX_WBITS))
            except zlib.error:  # some servers send raw deflate without the zlib header
                return self._inflate(zlib.decompressobj(-zlib.MAX_WBITS))
        raise Malformed(f"unsupported content coding {coding!r}")

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:  # a second answer on the same bytes: stray, never reuse the connection
            self.keep_alive = False
            return
        self.headers, self._head_bytes, self._framed, self._close = {}, 0, False, False

    def on_status(self, status: bytes) -> None:
        if not self.done:
            self._count_head(len(status) + 16)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:
            return
        self._count_head(len(name) + len(value) + 4)
        key = name.lower()
        if key in FRAMING:
            self._framed = True
        if key == b"connection" and b"close" in value.lower():
            self._close = True  # any Connection header saying close wins, wherever it stands
        if _CONTROL.search(value):  # CR, LF, NUL, DEL...: llhttp refuses them; never let one through
            self._fail("a header value holds a control character")
        self.headers[key.decode("latin-1")] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.done:
            return
        assert self._parser is not None
        self.status = self._parser.get_status_code()
        if self.status < 100:
            self._fail(f"status {self.status} is no HTTP status")
        encoding = self.headers.get("transfer-encoding")
        if encoding is not None and encoding.lower() != "chunked" and self.status not in (204, 304):
            self._fail(f"unsupported transfer coding {encoding!r}")
        length = self.headers.get("content-length")
        if length is not None and length.isascii() and length.isdigit() and int(length) > self.max_bytes:
            self._fail(f"answer larger than {self.max_bytes // (1024 * 1024)} MiB")  # before reading it
        if self.status >= 200:
            self._in_body = True

    def on_body(self, body: bytes) -> None:
        if self.done:
            return
        if len(self._body) + len(body) > self.max_bytes:
            self._fail(f"answer larger than {self.max_bytes // (1024 * 1024)} MiB")
        self._body += body

    def on_message_complete(self) -> None:
        if self.done or self.status < 200:  # an interim answer (100 Continue, 103): the real one follows
            return
        assert self._parser is not None
        self.done = True
        self.keep_alive = self._parser.should_keep_alive() and not self._close
        self._parser = None  # the cycle (see __init__); feed_data still holds it until it returns

    # --- inside ---------------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._fail("the answer's header is larger than 64 KiB")

    def _fail(self, message: str) -> None:
        self._problem = Malformed(message)
        raise self._problem

    def _inflate(self, inflater: zlib._Decompress) -> bytes:
        out = inflater.decompress(bytes(self._body), self.max_bytes + 1)
        if len(out) > self.max_bytes or inflater.unconsumed_tail:
            raise Malformed(f"answer larger than {self.max_bytes // (1024 * 1024)} MiB once decoded")
        if not inflater.eof or inflater.unused_data:  # cut short, or more than one stream
            raise Malformed("a compressed answer that does not end where its data does")
        return out


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:120]
