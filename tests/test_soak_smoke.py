"""bench/soak.py in smoke mode: faults injected mid-load, nothing executed twice, nothing lost."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def test_faults_mid_load_lose_nothing_and_duplicate_nothing() -> None:
    """Refusals, hangs, HTML 502s, resets and late answers under load: every call answered, 0/0."""
    result = subprocess.run([sys.executable, str(SOAK), "--seconds", "8", "--fault-rate", "0.3"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "duplicates: 0   lost: 0   without an answer: 0" in result.stdout
    injected = re.search(r"faults injected: (.*)", result.stdout)
    assert injected and injected.group(1) != "none"
    assert "alive at the end: True" in result.stdout
