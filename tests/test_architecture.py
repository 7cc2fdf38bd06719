"""The package's shape stays what README "How a request travels" shows (issue 10).

The layers and the absence of import cycles are import-linter's contracts in pyproject.toml; these
tests run them, and check what import-linter cannot: how many modules sit directly in `proxy/`, how
long a module may grow, and that nothing is a grab-bag `utils`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "proxy"
MAX_TOP_LEVEL_MODULES = 6
MAX_LINES = 300
GRAB_BAGS = ("util", "utils", "helpers", "helper", "common", "misc")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_import_linter_contracts_are_kept() -> None:
    """Layers point one way (cli → ops → web → audit → calls/policy → upstream/telemetry → config →
    vault → exmo/durable), no import cycle anywhere, the simulator shares no code with the daemon.
    (In a process of its own: lint-imports configures logging, which would silence later tests.)"""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", "--config", "pyproject.toml"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_few_modules_directly_in_the_package() -> None:
    """Code lives in packages named for what they own; only a handful of modules sit at the top."""
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_module_is_too_long() -> None:
    """A module past 300 lines is split by what it owns."""
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules()}
    assert not {name: n for name, n in lines.items() if n > MAX_LINES}


def test_no_grab_bag_modules() -> None:
    """No utils/helpers/common: every module is named for its one job."""
    assert not [p for p in PACKAGE.rglob("*") if p.stem in GRAB_BAGS]


def test_every_package_says_what_it_owns() -> None:
    """Each package's __init__ opens with a docstring: the tree explains itself."""
    missing = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("__init__.py")
               if not p.read_text().lstrip().startswith('"""')]
    assert not missing


def test_a_daemon_without_redis_does_not_load_redis_py() -> None:
    """redis-py is ~7 MiB of the daemon's memory: only `redis:` in the config loads it (web/app.py)."""
    code = ("import sys, proxy.cli.main, proxy.ops.server;"
            " print(sorted(m for m in sys.modules if m.startswith('redis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
