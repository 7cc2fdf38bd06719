"""What the daemon costs a bot: direct vs a bare signing proxy vs exmo-proxy, and what each feature costs.

    python bench/run.py                # the full benchmark: 3 rounds, 3 s per figure (about 6 minutes)
    python bench/run.py --smoke        # about 40 s: every figure once, for 1 s (the test suite runs this)

Needs wrk (`apt-get install wrk`); uvloop (`pip install uvloop`) for the event-loop rows. All on
127.0.0.1, in one run:

- upstream `bench/fastexmo.py`: answers like EXMO at once and checks every signature and nonce of the
  keys it knows (the full simulator would be the bottleneck);
- legs: `direct` (wrk straight to the upstream; it cannot sign, so those calls go unchecked), `bare`
  (`bench/bareproxy.py`, the smallest aiohttp signing proxy: the yardstick) and `daemon` (`exmo-proxy
  run` as shipped: encrypted config, audit log, access log, metrics, nonce durability, policy; only
  `limits.rate_per_second` is raised to 100,000, or the bench would measure EXMO's 10/s, and the
  pacing itself is priced as a toggle);
- a signed `order_create` (POST form) and a public `ticker` (GET), at concurrency 1 and 50; and signed
  calls at concurrency 50 spread over several keys, one wrk thread per key: one key's calls go to
  EXMO one at a time by design (proxy/calls/nonce.py), so one key measures that chain, several the daemon;
- figures: calls/s, p50 and p99 (wrk's), the proxy's CPU per call (/proc/PID/stat), the added p50 (minus
  direct, same round), RSS idle and after load, cold start to READY=1 (sd_notify, the Argon2id unlock
  included), and each feature toggled against the default daemon in the same round.

Every figure is taken once per round with the legs interleaved; tables print medians over rounds and
ratios within a round. Errors = wrk's socket errors + non-2xx answers + calls the upstream rejected; the
exit status is 1 if the daemon had any.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench_load import STALL_MS, Figure, Target, merged, run_wrk, script
from bench_stack import HERE, BenchStack, bench_stack, free_port, memory_mib

KEYED = "Idempotency-Key: <new per call>"
TOGGLES = [  # (what, the config lines added to the default config, or the header every call carries)
    ("rate limit pacing at 10,000/s", "limits.rate_per_second: 10000"),
    ("audit fsync per entry", "audit: {fsync: true}"),
    ("access log off", "access_log: false"),
    ("metrics off", "metrics: false"),
    ("asyncio event loop", "event_loop: asyncio"),
    ("uvloop event loop", "event_loop: uvloop"),
    ("idempotency records", KEYED),  # the default config; every call keyed: a record before, one after
]
TARGETS = ("added p50 ≤ 0.35 ms; ≥ 4,000 signed calls/s at c=50, 0 errors; CPU ≤ 250 µs/call;"
           " RSS ≤ 48 / 64 MiB; READY ≤ 0.6 s")
PICKS: list[Callable[[Figure], float]] = [lambda f: f.rps, lambda f: f.p50_ms, lambda f: f.p99_ms,
                                           lambda f: f.cpu_us]
Log = Callable[[str], None]
Rows = dict[str, list[Figure]]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 2) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN prints as -


class Bench:
    def __init__(self, stack: BenchStack, seconds: float, log: Log) -> None:
        self.stack, self.seconds, self.log = stack, seconds, log
        kinds = ("order_create", "ticker", "spread", "order_create_keyed", "spread_keyed")
        self.scripts = {kind: script(stack.tmp, kind, stack.accounts) for kind in kinds}

    def run(self, target: Target, kind: str, connections: int, seconds: float | None = None,
            threads: int = 1) -> Figure:
        seconds = self.seconds if seconds is None else seconds
        if kind.startswith("spread"):
            threads = len(self.stack.accounts)
            return run_wrk(target, self.scripts[kind], "", max(connections, threads), seconds,
                           self.stack.upstream_port, threads=threads)
        return run_wrk(target, self.scripts[kind], f"/v1.1/{kind.removesuffix('_keyed')}", connections,
                       seconds, self.stack.upstream_port, threads=threads)


def main_table(bench: Bench, targets: list[Target], rounds: int) -> Rows:
    rows: Rows = {}
    cases = [(kind, c) for kind in ("order_create", "ticker") for c in (1, 50)]
    for number in range(1, rounds + 1):
        bench.log(f"round {number}/{rounds}")
        for kind, connections in cases:
            for target in targets:
                rows.setdefault(f"{kind}|{connections}|{target.name}", []).append(
                    bench.run(target, kind, connections))
        daemon = targets[-1]  # the bare proxy has one key and no /accounts/ routes
        rows.setdefault(f"spread|50|{daemon.name}", []).append(bench.run(daemon, "spread", 50))
    return rows


def print_main(rows: Rows, keys: int, rounds: int) -> None:
    print(f"\n## Direct vs through a proxy (median of {rounds} round(s))\n")
    print("| call | conc | leg | calls/s | p50 ms | p99 ms | added p50 ms | CPU µs/call | calls/s vs bare"
          " | errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for key in rows:
        kind, connections, leg = key.split("|")
        figures = rows[key]
        direct = rows.get(f"{kind}|{connections}|direct")
        bare = rows.get(f"{kind}|{connections}|bare")
        added = (median([f.p50_ms - d.p50_ms for f, d in zip(figures, direct, strict=True)]) if direct
                 else float("nan"))
        ratio = median([f.rps / b.rps for f, b in zip(figures, bare, strict=True)]) if bare else float("nan")
        label = f"order_create, {keys} keys" if kind == "spread" else kind
        rps, p50, p99, cpu = (median([pick(f) for f in figures]) for pick in PICKS)
        print(f"| {label} | {connections} | {leg} | {fmt(rps, 0)} | {fmt(p50, 3)} | {fmt(p99, 3)}"
              f" | {'-' if leg == 'direct' else fmt(added, 3)} | {fmt(cpu, 0)}"
              f" | {'-' if leg != 'daemon' else fmt(ratio, 2)} | {sum(f.errors for f in figures)} |")


TAIL_LEGS = (("order_create, c=50 over the keys", 50), ("order_create, c=1", 1))


TAIL_SLICE_S = 5


def tail(bench: Bench, bare: Target, daemon: Target, rounds: int, seconds: float) -> int:
    """Issue 15: the tail of signed calls, each figure long enough to cross several nonce ceilings
    (one per key per 10 s of clock), the daemon beside the bare signer in the same round. A round's
    two legs take turns in slices of TAIL_SLICE_S (bare, daemon, daemon, bare, ...), so a noisy
    neighbour on the host weighs on both alike; each figure merges its leg's slices (histograms too)."""
    keys = len(bench.stack.accounts)
    runs: dict[str, list[tuple[Figure, Figure]]] = {name: [] for name, _ in TAIL_LEGS}
    slices = max(1, round(seconds / TAIL_SLICE_S))
    for number in range(1, rounds + 1):
        for name, connections in TAIL_LEGS:
            bench.log(f"tail round {number}/{rounds}: {name}, {seconds:g} s per leg in {slices} slices")
            # The bare signer has one key and no routes per account: the same load on its one path,
            # from as many wrk threads as the daemon's leg gets.
            threads = keys if connections > 1 else 1
            legs: tuple[list[Figure], list[Figure]] = ([], [])
            for part in range(slices):
                for turn in ((0, 1) if part % 2 == 0 else (1, 0)):
                    if turn == 0:
                        legs[0].append(bench.run(bare, "order_create", connections, seconds / slices,
                                                 threads=threads))
                    else:
                        legs[1].append(bench.run(daemon, "spread" if connections > 1 else "order_create",
                                                 connections, seconds / slices))
            runs[name].append((merged(legs[0]), merged(legs[1])))
    print(f"\n## Tail of signed calls ({rounds} round(s) x {seconds:g} s per leg, {keys} keys for c=50;"
          f" a stall is a call over {STALL_MS} ms)\n")
    print("| load | leg | round | calls/s | vs bare | CPU µs/call | p50 ms | p99 ms | p99.9 ms | max ms |"
          " p99/p50 | p99.9/p50 | stalls | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in TAIL_LEGS:
        for number, (base, ours) in enumerate(runs[name], 1):
            for leg, figure in (("bare", base), ("daemon", ours)):
                ratio = fmt(figure.rps / base.rps, 2) if leg == "daemon" else "-"
                print(f"| {name} | {leg} | {number} | {fmt(figure.rps, 0)} | {ratio}"
                      f" | {fmt(figure.cpu_us, 0)} | {fmt(figure.p50_ms, 3)} | {fmt(figure.p99_ms, 3)}"
                      f" | {fmt(figure.p999_ms, 3)} | {fmt(figure.max_ms, 1)}"
                      f" | {fmt(figure.p99_ms / figure.p50_ms, 1)} | {fmt(figure.p999_ms / figure.p50_ms, 1)}"
                      f" | {figure.stalls} of {figure.calls:,} | {figure.errors} |")
    wide, single = runs[TAIL_LEGS[0][0]], runs[TAIL_LEGS[1][0]]
    checks = [
        ("c=50: p99 ≤ 3 x p50, every round", all(d.p99_ms <= 3 * d.p50_ms for _, d in wide)),
        ("c=50: p99.9 ≤ 10 x p50, every round", all(d.p999_ms <= 10 * d.p50_ms for _, d in wide)),
        ("c=50: calls/s ≥ 1.0 x the bare signer, every round", all(d.rps >= b.rps for b, d in wide)),
        ("c=1: p99 ≤ 2 x p50, every round", all(d.p99_ms <= 2 * d.p50_ms for _, d in single)),
        ("no errors", not any(d.errors for _, d in wide + single)),
    ]
    print("\n| target (issue 15) | |\n|---|---|")
    for what, met in checks:
        print(f"| {what} | {'met' if met else 'MISSED'} |")
    ratios = [d.rps / b.rps for b, d in wide]
    print(f"\nc=50 daemon ÷ bare by round: {', '.join(fmt(r, 2) for r in ratios)}"
          f" (spread {fmt(max(ratios) - min(ratios), 2)})")
    return sum(d.errors for _, d in wide + single)


def redis_mode(bench: Bench, local: Target, rounds: int) -> int:
    """Issue 13: the same daemon with `redis:` (a redis-server on loopback, started here) beside the
    default local daemon, in the same rounds: a key's lease, the shared nonce counter and the shared
    rate limit cost Redis round trips per signed call."""
    if shutil.which("redis-server") is None:
        print("\n## Redis mode\n\nnot measured: redis-server is not installed (apt-get install redis-server)")
        return 0
    stack = bench.stack
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - redis-server with our own arguments
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],  # noqa: S607
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        variant = stack.daemon("redis", stack.config("redis", f"redis: {{url: 'redis://127.0.0.1:{port}/0'}}"))
        target = Target("redis", variant.port, variant.pid)
        runs: list[tuple[Figure, Figure, Figure, Figure]] = []
        for number in range(rounds):
            bench.log(f"redis mode: round {number + 1}/{rounds}")
            runs.append((bench.run(local, "order_create", 1), bench.run(target, "order_create", 1),
                         bench.run(local, "spread", 50), bench.run(target, "spread", 50)))
        variant.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)
    added = median([r.p50_ms - loc.p50_ms for loc, r, _, _ in runs])
    ratio = median([r.rps / loc.rps for _, _, loc, r in runs])
    print(f"\n## Redis mode (signed order_create; median of {rounds} round(s), the local daemon in the same"
          " round)\n")
    print("| | local p50 ms, c=1 | Redis p50 ms, c=1 | added | local calls/s, c=50 over keys |"
          " Redis calls/s | ratio | Redis CPU µs/call | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| median | {fmt(median([loc.p50_ms for loc, _, _, _ in runs]), 3)}"
          f" | {fmt(median([r.p50_ms for _, r, _, _ in runs]), 3)} | {fmt(added, 3)}"
          f" | {fmt(median([loc.rps for _, _, loc, _ in runs]), 0)}"
          f" | {fmt(median([r.rps for _, _, _, r in runs]), 0)}"
          f" | {fmt(ratio, 2)} | {fmt(median([r.cpu_us for _, _, _, r in runs]), 0)}"
          f" | {sum(r.errors + s.errors for _, s, _, r in runs)} |")
    print(f"\nTargets (issue 13): added p50 ≤ 0.25 ms: {'met' if added <= 0.25 else 'MISSED'};"
          f" throughput over keys ≥ 70 % of local: {'met' if ratio >= 0.70 else 'MISSED'}")
    return sum(r.errors + s.errors for _, s, _, r in runs)


def toggles(bench: Bench, default: Target, rounds: int) -> int:
    print(f"\n## What each feature costs (signed order_create; median of {rounds} round(s); each ratio is"
          " against the default daemon in the same round)\n")
    print(f"| variant | config | calls/s, c=50 over {len(bench.stack.accounts)} keys | ratio | CPU µs/call |"
          " p50 ms, c=1 | ratio | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    errors = 0
    for name, change in TOGGLES:
        if "uvloop" in change and not _have_uvloop():
            print(f"| {name} | `{change}` | not measured: uvloop is not installed | | | | | |")
            continue
        slug = "".join(c if c.isalnum() else "-" for c in name)
        keyed = "_keyed" if change == KEYED else ""
        variant = bench.stack.daemon(slug, bench.stack.config(slug, "" if keyed else change))
        target = Target(name, variant.port, variant.pid)
        runs: list[tuple[Figure, Figure, Figure, Figure]] = []
        for number in range(rounds):
            bench.log(f"toggle {name}: round {number + 1}/{rounds}")
            runs.append((bench.run(default, "spread", 50), bench.run(target, "spread" + keyed, 50),
                         bench.run(default, "order_create", 1), bench.run(target, "order_create" + keyed, 1)))
        variant.stop()
        errors += sum(v.errors + s.errors for _, v, _, s in runs)
        print(f"| {name} | `{change}` | {fmt(median([v.rps for _, v, _, _ in runs]), 0)}"
              f" | {fmt(median([v.rps / d.rps for d, v, _, _ in runs]), 2)}"
              f" | {fmt(median([v.cpu_us for _, v, _, _ in runs]), 0)}"
              f" | {fmt(median([s.p50_ms for _, _, _, s in runs]), 3)}"
              f" | {fmt(median([s.p50_ms / d.p50_ms for _, _, d, s in runs]), 2)}"
              f" | {sum(v.errors + s.errors for _, v, _, s in runs)} |")
    return errors


def print_targets(rows: Rows, starts: list[float], idle: float, loaded: float) -> None:
    def figure(key: str, pick: Callable[[Figure], float]) -> float:
        return median([pick(f) for f in rows[key]])

    added = median([f.p50_ms - d.p50_ms for f, d in zip(rows["order_create|1|daemon"],
                                                         rows["order_create|1|direct"], strict=True)])
    spread_rps = figure("spread|50|daemon", lambda f: f.rps)
    spread_cpu = figure("spread|50|daemon", lambda f: f.cpu_us)
    errors = sum(f.errors for f in rows["spread|50|daemon"] + rows["order_create|50|daemon"])
    checks = [
        ("added p50 per signed call, c=1", f"{added:.3f} ms", added <= 0.35),
        ("signed calls/s, c=50, several keys, 0 errors", f"{spread_rps:,.0f}/s, {errors} errors",
         spread_rps >= 4000 and errors == 0),
        ("CPU per signed call at c=50 (saturated)", f"{spread_cpu:.0f} µs", spread_cpu <= 250),
        ("RSS idle / after load", f"{idle:.1f} / {loaded:.1f} MiB", idle <= 48 and loaded <= 64),
        ("cold start to READY=1", f"{median(starts) * 1000:.0f} ms", median(starts) <= 0.6),
    ]
    print("\n## Targets (issue 6)\n")
    print("| target | measured (median) | |")
    print("|---|---:|---|")
    for what, value, met in checks:
        print(f"| {what} | {value} | {'met' if met else 'MISSED'} |")
    one_key = figure("order_create|50|daemon", lambda f: f.rps)
    print(f"\nOne key at c=50: {one_key:,.0f} signed calls/s (a key's calls go out one at a time:"
          " proxy/calls/nonce.py).")


def _have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="one short round of everything: a check, not figures")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="per figure (whole seconds: wrk's unit)")
    parser.add_argument("--keys", type=int, default=8, help="accounts for the spread-over-keys rows")
    parser.add_argument("--no-toggles", action="store_true", help="skip the feature toggles")
    parser.add_argument("--tail-seconds", type=int, default=30,
                        help="per figure of the tail section (long enough to cross nonce ceilings)")
    parser.add_argument("--only-tail", action="store_true", help="cold starts and the tail section only")
    parser.add_argument("--only-redis", action="store_true", help="cold starts and the Redis section only")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.seconds, args.keys, args.tail_seconds = 1, 1, 4, 1
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(f"[bench] {text}", file=sys.stderr, flush=True)

    print(f"# exmo-proxy benchmark\n\n{machine()}; wrk -t1, one thread per key for the spread rows\n"
          f"`python bench/run.py {' '.join(sys.argv[1:] if argv is None else argv)}`: {args.rounds} round(s),"
          f" {args.seconds} s per figure\n\nTargets: {TARGETS}")
    with bench_stack(args.keys) as stack:
        config = stack.config("default")
        starts = []
        for number in range(1 if args.smoke else 3):
            seconds, process = stack.cold_start(f"cold-{number}", config)
            starts.append(seconds)
            process.stop()
        ready, daemon = stack.cold_start("daemon", config)
        starts.append(ready)
        time.sleep(1.0)
        idle = memory_mib(daemon.pid)
        bare = stack.spawn([str(HERE / "bareproxy.py"), "--upstream", f"http://127.0.0.1:{stack.upstream_port}",
                            "--accounts", str(stack.tmp / "bare-key.yaml")], "bare")
        targets = [Target("direct", stack.upstream_port, None), Target("bare", bare.port, bare.pid),
                   Target("daemon", daemon.port, daemon.pid)]
        bench = Bench(stack, args.seconds, log)
        if args.only_tail:
            return 1 if tail(bench, targets[1], targets[2], args.rounds, args.tail_seconds) else 0
        if args.only_redis:
            return 1 if redis_mode(bench, targets[2], args.rounds) else 0
        rows = main_table(bench, targets, args.rounds)
        loaded = memory_mib(daemon.pid)
        print_main(rows, len(stack.accounts), args.rounds)
        print("\n## Memory and start-up (daemon)\n")
        print(f"- cold start, exec to READY=1 (sd_notify; Argon2id unlock included): median"
              f" {median(starts) * 1000:.0f} ms over {len(starts)} starts (min {min(starts) * 1000:.0f},"
              f" max {max(starts) * 1000:.0f})")
        print(f"- RSS idle after start: {idle:.1f} MiB; after the load above: {loaded:.1f} MiB;"
              f" peak (VmHWM): {memory_mib(daemon.pid, 'VmHWM'):.1f} MiB")
        toggle_errors = 0 if args.no_toggles else toggles(bench, targets[2], args.rounds)
        toggle_errors += tail(bench, targets[1], targets[2], args.rounds, args.tail_seconds)
        toggle_errors += redis_mode(bench, targets[2], args.rounds)
        print_targets(rows, starts, idle, loaded)
        errors = sum(f.errors for key, figures in rows.items() if key.endswith("|daemon") for f in figures)
        print(f"\nDaemon errors (socket, non-2xx, upstream rejections): {errors + toggle_errors}")
        return 1 if errors + toggle_errors else 0


if __name__ == "__main__":
    sys.exit(main())
