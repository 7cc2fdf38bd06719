"""Load from wrk (C, one event loop per thread) and what one run of it measured.

wrk's Lua `done` hook prints the figures as JSON; the upstream's counts say how many calls it
rejected (bad signature, 40009) while the run lasted; /proc says how much CPU the proxy used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench_stack import cpu_seconds

ORDER = "pair=BTC_USD&quantity=0.001&price=50000&type=buy"
FORM = '{["Content-Type"] = "application/x-www-form-urlencoded"}'
STALL_MS = 50  # a call slower than this is a stall (issue 15): a bot feels it
DONE = f"local STALL_US = {STALL_MS * 1000}\n" + """
done = function(summary, latency, requests)
  local e = summary.errors
  local stalls, samples, histogram = 0, 0, {}
  for i = 1, #latency do  -- every distinct latency and how many calls had it
    local value, count = latency(i)
    samples = samples + count
    if value > STALL_US then stalls = stalls + count end
    histogram[#histogram + 1] = string.format('[%d,%d]', value, count)
  end
  io.write(string.format('\\nBENCH {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,'
    .. '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"stalls":%d,"samples":%d,"histogram":[%s]}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, stalls, samples,
    table.concat(histogram, ',')))
end
"""


@dataclass(frozen=True)
class Target:
    """Where a leg sends: a port, and the proxy's pid (None for the upstream itself)."""

    name: str
    port: int
    pid: int | None


@dataclass(frozen=True)
class Figure:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the proxy's CPU per call; NaN for the direct leg
    errors: int  # socket errors + non-2xx answers + calls the upstream rejected
    calls: int
    p999_ms: float = float("nan")
    max_ms: float = float("nan")
    stalls: int = 0  # calls slower than STALL_MS
    seconds: float = 0.0  # how long wrk ran
    histogram: tuple[tuple[int, int], ...] = ()  # (latency µs, calls) for every latency seen


def merged(figures: list[Figure]) -> Figure:
    """Several runs of one leg as one figure: calls/s over their summed time, CPU per call over all
    their calls, and percentiles of their merged latency histograms (exact: wrk reports each run's)."""
    counts: dict[int, int] = {}
    for figure in figures:
        for value, count in figure.histogram:
            counts[value] = counts.get(value, 0) + count
    ordered = sorted(counts.items())
    total = sum(counts.values())

    def percentile(p: float) -> float:
        rank, seen = p / 100 * total, 0
        for value, count in ordered:
            seen += count
            if seen >= rank:
                return value / 1000
        return float("nan")

    calls = sum(f.calls for f in figures)
    seconds = sum(f.seconds for f in figures)
    return Figure(
        rps=calls / seconds, p50_ms=percentile(50), p99_ms=percentile(99),
        cpu_us=sum(f.cpu_us * f.calls for f in figures) / calls, errors=sum(f.errors for f in figures),
        calls=calls, p999_ms=percentile(99.9), max_ms=max(f.max_ms for f in figures),
        stalls=sum(f.stalls for f in figures), seconds=seconds, histogram=tuple(ordered))


KEYED = """local id = 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
local tag = os.time() .. '-' .. math.random(1, 1000000000)  -- a new key every call, in every run
local function keyed(path)
  id = id + 1
  return wrk.format('POST', path, {["Content-Type"] = "application/x-www-form-urlencoded",
                                   ["Idempotency-Key"] = tag .. '-' .. id}, '""" + ORDER + """')
end
"""


def script(folder: Path, kind: str, accounts: list[str] | None = None) -> Path:
    """The Lua script for `order_create` (signed), `ticker` (public GET), or `spread`: order_create
    with each wrk thread bound to its own account (/accounts/NAME/...), one key per thread. A `_keyed`
    kind sends a new Idempotency-Key with every call (the bench's price of the idempotency records)."""
    path = folder / f"{kind}.lua"
    if kind == "order_create":  # the direct leg cannot sign: the upstream answers unknown keys unchecked
        body = (f'wrk.method = "POST"\nwrk.body = "{ORDER}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                'wrk.headers["Key"] = "K-direct-unchecked"\n')
    elif kind == "order_create_keyed":
        body = KEYED + "request = function() return keyed('/v1.1/order_create') end\n"
    elif kind in ("spread", "spread_keyed"):
        names = ", ".join(f'"{name}"' for name in accounts or [])
        body = (f"local names = {{{names}}}\nlocal count = 0\n"
                "setup = function(thread)\n  count = count + 1\n"
                "  thread:set('account', names[(count - 1) % #names + 1])\nend\n")
        if kind == "spread":
            body += ("init = function(args)\n  req = wrk.format('POST', '/accounts/' .. account .."
                     f" '/v1.1/order_create', {FORM}, '{ORDER}')\nend\nrequest = function() return req end\n")
        else:
            body += KEYED + ("request = function() return keyed('/accounts/' .. account .."
                             " '/v1.1/order_create') end\n")
    else:
        body = ""
    path.write_text(body + DONE)
    return path


def upstream_counts(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats", timeout=5) as resp:
        counts: dict[str, int] = json.load(resp)
    return counts


def run_wrk(target: Target, lua: Path, path: str, connections: int, seconds: float, upstream_port: int,
            threads: int = 1) -> Figure:
    before = upstream_counts(upstream_port)
    cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
    out = subprocess.run(  # noqa: S603 - wrk with our own arguments
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",  # noqa: S607
         "-s", str(lua), f"http://127.0.0.1:{target.port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = cpu_seconds(target.pid) - cpu_before if target.pid else float("nan")
    after = upstream_counts(upstream_port)
    found = json.loads(out.split("BENCH ", 1)[1])
    calls = max(1, int(found["requests"]))
    rejected = sum(count - before.get(name, 0) for name, count in after.items()
                   if name.startswith("rejected"))
    if os.environ.get("BENCH_DEBUG") and (found["errors"] or found["non2xx"] or rejected):
        print(f"[bench] {target.name} {lua.name}: socket errors {found['errors']}, non-2xx {found['non2xx']},"
              f" rejected upstream {rejected}", file=sys.stderr)
    return Figure(
        rps=calls / (found["duration_us"] / 1e6), p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000, cpu_us=cpu * 1e6 / calls,
        errors=int(found["errors"] + found["non2xx"] + rejected), calls=calls,
        p999_ms=found["p999_us"] / 1000, max_ms=found["max_us"] / 1000, stalls=int(found["stalls"]),
        seconds=found["duration_us"] / 1e6, histogram=tuple((int(v), int(c)) for v, c in found["histogram"]),
    )
