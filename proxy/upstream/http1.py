"""Reading one HTTP/1.1 answer from the bytes as they arrive (the upstream client, wire.py).

Framing by Content-Length, chunked transfer coding, or the connection closing; interim 1xx answers are
skipped; gzip and deflate are decoded. Every size is bounded by `max_bytes` (raw and decoded) and the
head by 64 KiB, so a hostile or broken peer cannot make the daemon buffer without limit. Anything that
is not a well-formed answer raises Malformed.
"""

from __future__ import annotations

import re
import zlib

MAX_HEAD_BYTES = 64 * 1024
FRAMING = frozenset({"content-length", "transfer-encoding"})
_DECIMAL = re.compile(r"[0-9]{1,15}")  # not str.isdigit(), which takes "²"
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Malformed(Exception):
    pass


class AnswerReader:
    """Parses one answer from the bytes fed to it; `done` when complete."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self._length: int | None = None  # None: read until the connection closes
        self._chunked = False
        self._body = bytearray()
        self._in_head = True
        self.done = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while not self.done:
            progressed = self._head() if self._in_head else self._chunk() if self._chunked else self._fixed()
            if not progressed:
                return

    def finish_at_eof(self) -> bool:
        """The peer closed: complete if the answer was delimited by that."""
        if not self._in_head and not self._chunked and self._length is None:
            self._body += self.buffer
            self.buffer.clear()
            self._check_size(len(self._body))
            self.done, self.keep_alive = True, False
        return self.done

    def _head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise Malformed("the answer's header is larger than 64 KiB")
            return False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise Malformed(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise Malformed("a malformed header line")
            name, value = name.lower(), value.strip()
            if name in FRAMING and name in headers and headers[name] != value:
                raise Malformed(f"two different {name} headers")  # which one frames the body?
            headers[name] = value
        if 100 <= status < 200:
            if status == 101:
                raise Malformed("the server switched protocols")
            return True  # an interim answer (100 Continue, 103): the real one follows
        self.status, self.headers, self._in_head = status, headers, False
        connection = headers.get("connection", "").lower()
        self.keep_alive = version == "HTTP/1.1" and "close" not in connection
        encoding = headers.get("transfer-encoding")
        if status in (204, 304):  # never a body, whatever the headers say (RFC 9112 §6.3)
            self._length = 0
        elif encoding is not None:
            if encoding.lower() != "chunked":
                raise Malformed(f"unsupported transfer coding {encoding!r}")
            if "content-length" in headers:  # an ambiguity smuggling is made of: refuse it
                raise Malformed("both Transfer-Encoding and Content-Length")
            self._chunked = True
        elif "content-length" in headers:
            length = headers["content-length"]
            if not _DECIMAL.fullmatch(length):
                raise Malformed("a malformed Content-Length")
            self._length = int(length)
            self._check_size(self._length)
        else:
            self.keep_alive = False  # delimited by the close
        return True

    def _fixed(self) -> bool:
        if self._length is None:
            self._check_size(len(self.buffer))
            return False
        if len(self.buffer) < self._length:
            return False
        self._body = self.buffer[:self._length]
        if len(self.buffer) > self._length:
            self.keep_alive = False  # bytes nobody asked for: do not reuse this connection
        self.buffer = bytearray()
        self.done = True
        return True

    def _chunk(self) -> bool:
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > 1024:
                raise Malformed("a malformed chunk size line")
            return False
        size_text = bytes(self.buffer[:end]).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):  # int(x, 16) alone would take "-2", "0x1f" or "1_0"
            raise Malformed("a malformed chunk size")
        size = int(size_text, 16)
        if size == 0:  # last chunk: skip trailers up to the empty line
            trailer_end = self.buffer.find(b"\r\n\r\n", end)
            if trailer_end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    raise Malformed("chunk trailers larger than 64 KiB")
                return False
            if len(self.buffer) > trailer_end + 4:
                self.keep_alive = False
            self.buffer = bytearray()
            self.done = True
            return True
        self._check_size(len(self._body) + size)
        if len(self.buffer) < end + 2 + size + 2:
            return False
        if self.buffer[end + 2 + size:end + 4 + size] != b"\r\n":
            raise Malformed("a chunk does not end where its size says")
        self._body += self.buffer[end + 2:end + 2 + size]
        del self.buffer[:end + 4 + size]
        return True

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise Malformed(f"answer larger than {self.max_bytes // (1024 * 1024)} MiB")

    def body(self) -> bytes:
        coding = self.headers.get("content-encoding", "identity").lower()
        if coding in ("identity", ""):
            return bytes(self._body)
        if coding in ("gzip", "x-gzip"):
            return self._inflate(zlib.decompressobj(16 + zlib.MAX_WBITS))
        if coding == "deflate":
            try:
                return self._inflate(zlib.decompressobj(zlib.MAX_WBITS))
            except zlib.error:  # some servers send raw deflate without the zlib header
                return self._inflate(zlib.decompressobj(-zlib.MAX_WBITS))
        raise Malformed(f"unsupported content coding {coding!r}")

    def _inflate(self, inflater: zlib._Decompress) -> bytes:
        out = inflater.decompress(bytes(self._body), self.max_bytes + 1)
        if len(out) > self.max_bytes or inflater.unconsumed_tail:
            raise Malformed(f"answer larger than {self.max_bytes // (1024 * 1024)} MiB once decoded")
        if not inflater.eof or inflater.unused_data:  # cut short, or more than one stream
            raise Malformed("a compressed answer that does not end where its data does")
        return out
