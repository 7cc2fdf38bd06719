"""A fast stand-in for EXMO, for benchmarks only: answers at once, so the thing measured is the daemon.

    python bench/fastexmo.py --listen 127.0.0.1:9000 --accounts keys.yaml

The simulator (`exmo-proxy simulator`) is the faithful upstream for tests; it is built on aiohttp and
keeps order books, so under load it would be the bottleneck. This one is a bare asyncio protocol
(uvloop when installed) that speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies):

- `GET|POST /v1.1/ticker` (and /v1/) answers a fixed three-pair ticker;
- `POST /v1.1/<method>` with a `Key` it knows is checked as EXMO would: `Sign` must be the HMAC-SHA512
  of the body and the nonce must be larger than the last one accepted for that key, else it answers
  EXMO's 40005 / 40009 error texts (HTTP 200, like EXMO). A passing call answers an order_create
  success with a fresh order_id;
- a `Key` it does not know (the direct, unsigned leg of the benchmark: wrk cannot sign) gets the same
  success answer unchecked;
- `GET /_stats` answers the counts: requests, checked, rejected (by code); `POST /_keys` with more
  `K-...: S-...` lines adds keys to check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import re
from collections import Counter
from hashlib import sha512
from pathlib import Path

TICKER = json.dumps({
    pair: {"buy_price": "589.06", "sell_price": "592", "last_trade": "591.221", "high": "602.082",
           "low": "584.51011695", "avg": "591.14698808", "vol": "167.59763535", "vol_curr": "99095.17162071",
           "updated": 1470250973}
    for pair in ("BTC_USD", "ETH_USD", "BTC_USDT")
}).encode()
NONCE_ERROR = '40009: The nonce parameter is less or equal than what was used before "{}"'  # §3
_HEAD_END = b"\r\n\r\n"
_NONCE = re.compile(rb"(?:^|&)nonce=(\d+)")


class Exchange:
    def __init__(self, secrets: dict[str, bytes]) -> None:
        self.secrets = secrets
        self.last_nonce: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.order_id = 10_000_000

    def answer(self, method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> bytes:
        self.counts["requests"] += 1
        name = path.split("?", 1)[0].rsplit("/", 1)[-1]
        if path == "/_stats":
            return json.dumps(dict(self.counts)).encode()
        if path == "/_keys":  # more `K-...: S-...` lines to check, for a daemon with keys of its own
            self.secrets.update(parse_keys(body.decode()))
            return b"{}"
        if name == "ticker":
            return TICKER
        key = headers.get(b"key", b"").decode("latin-1")
        secret = self.secrets.get(key)
        if secret is not None:
            self.counts["checked"] += 1
            rejection = self._check(key, secret, headers.get(b"sign", b""), body)
            if rejection:
                self.counts["rejected_" + rejection[:5]] += 1
                return json.dumps({"result": False, "error": rejection}).encode()
        self.order_id += 1
        return b'{"result":true,"error":"","order_id":%d,"client_id":0}' % self.order_id

    def _check(self, key: str, secret: bytes, sign: bytes, body: bytes) -> str | None:
        expected = hmac.new(secret, body, sha512).hexdigest().encode()
        if not hmac.compare_digest(expected, sign):
            return "40005: Authorization error, incorrect signature"
        found = _NONCE.search(body)
        nonce = int(found.group(1)) if found else 0
        last = self.last_nonce.get(key, 0)
        if nonce <= last:
            return NONCE_ERROR.format(last)
        self.last_nonce[key] = nonce
        return None


class Connection(asyncio.Protocol):
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEAD_END)
            if end < 0:
                return
            lines = self.buffer[:end].split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path, _ = lines[0].decode("latin-1").split(" ", 2)
            payload = self.exchange.answer(method, path, headers, body)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))


def parse_keys(text: str) -> dict[str, bytes]:
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): secret.strip().encode() for key, secret in pairs}


async def serve(host: str, port: int, exchange: Exchange) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(exchange), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9000")
    parser.add_argument("--accounts", type=Path, help="file of `K-...: S-...` lines (keys to check)")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    exchange = Exchange(parse_keys(args.accounts.read_text()) if args.accounts else {})
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # the bench's upstream should be cheap: the daemon is what is measured

        run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(host, int(port), exchange))


if __name__ == "__main__":
    main()
