"""The yardstick: the smallest aiohttp signing proxy that works, with none of the daemon's features.

    python bench/bareproxy.py --listen 127.0.0.1:9100 --upstream http://127.0.0.1:9000 --accounts keys.yaml

One route; a private call gets `nonce` (milliseconds, +1 when equal, no durability, no ordering
between calls in flight), `Key` and `Sign`, and is forwarded over a pooled aiohttp session; public
calls are forwarded as they are. No policy, audit log, access log, metrics, rate limit or secret
encryption. `bench/run.py` measures it beside the daemon, in the same round, so the daemon's cost is
a ratio to what any signing proxy written with aiohttp costs on the same machine.
"""

from __future__ import annotations

import argparse
import hmac
import time
from collections.abc import AsyncIterator
from hashlib import sha512
from pathlib import Path

from aiohttp import ClientSession, TCPConnector, web

SESSION = web.AppKey("session", ClientSession)
PUBLIC = frozenset({"ticker", "trades", "order_book", "pair_settings", "currency", "required_amount"})


def build(upstream: str, key: str, secret: bytes) -> web.Application:
    state = {"nonce": 0}
    app = web.Application()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = ClientSession(connector=TCPConnector(limit=64))
        yield
        await app[SESSION].close()

    async def forward(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if method not in PUBLIC:
            state["nonce"] = max(state["nonce"] + 1, time.time_ns() // 1_000_000)
            body = b"nonce=%d&" % state["nonce"] + body if body else b"nonce=%d" % state["nonce"]
            headers.update(Key=key, Sign=hmac.new(secret, body, sha512).hexdigest())
        async with app[SESSION].post(f"{upstream}/v1.1/{method}", data=body, headers=headers) as resp:
            payload = await resp.read()
            return web.Response(body=payload, status=resp.status, content_type="application/json")

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/v1.1/{method}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9100")
    parser.add_argument("--upstream", default="http://127.0.0.1:9000")
    parser.add_argument("--accounts", type=Path, required=True, help="file with one `K-...: S-...` line")
    args = parser.parse_args()
    key, secret = (part.strip() for part in args.accounts.read_text().splitlines()[0].split(":", 1))
    host, port = args.listen.rsplit(":", 1)
    web.run_app(build(args.upstream, key, secret.encode()), host=host, port=int(port), print=None,
                access_log=None)


if __name__ == "__main__":
    main()
