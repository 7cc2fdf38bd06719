"""The benchmark's smoke mode: every leg, figure and toggle of bench/run.py, briefly, with no errors.

This proves the bench runs and that the daemon under its load answers every call correctly (the fast
upstream checks each signature and nonce); the figures themselves are noise at one second each and
are not asserted. The real run and its figures: README "Performance", bench/RESULTS.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk: apt-get install wrk (.ci/run does)")
def test_bench_smoke_runs_every_leg_without_errors() -> None:
    result = subprocess.run([sys.executable, "bench/run.py", "--smoke"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for leg in ("| order_create | 1 | direct |", "| order_create | 50 | bare |", "| ticker | 50 | daemon |",
                "| order_create, 4 keys | 50 | daemon |", "| audit fsync per entry |", "| metrics off |",
                "cold start, exec to READY=1", "RSS idle after start"):
        assert leg in out, leg
    assert "Daemon errors (socket, non-2xx, upstream rejections): 0" in out
    assert "Traceback" not in result.stderr


def test_stream_bench_smoke_measures_every_figure() -> None:
    """bench/bench_streams.py --smoke: round trips, a flood and memory per stream, through the daemon."""
    result = subprocess.run([sys.executable, "bench/bench_streams.py", "--smoke"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("| direct | /v1/public |", "| daemon | /v1/public |", "| daemon | /v1/private |",
                "added latency per relayed frame", "daemon memory per open idle stream"):
        assert row in result.stdout, row
