"""The Dockerfile's own install steps, replayed in a fresh venv, give a daemon that signs.

No Docker engine is needed: the two commands that build and install the wheels are read out of the
Dockerfile, run with its paths mapped into a temporary directory, and the resulting `exmo-proxy`
is started with a read-only config and the passphrase from a secret file, against the simulator.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Stack, clean_env, curl_json, free_port, wait_for_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _step(pattern: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(pattern, text)
    assert found, f"the Dockerfile no longer has a step matching {pattern!r}"
    return shlex.split(found.group(0))


def test_image_install_steps_produce_a_working_daemon(make_stack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """pip wheel '.[uvloop]' → venv → pip install --no-index from the wheels → `exmo-proxy run` signs."""
    stack: Stack = make_stack()
    stack.daemon.stop()
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    build = _step(r"pip wheel [^\n&]*")
    build = [str(wheels) if arg == "/wheels" else arg for arg in build]
    subprocess.run([sys.executable, "-m", *build], cwd=ROOT, check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = _step(r"/opt/exmo-proxy/bin/pip install [^\n&]*")
    install = [str(venv / "bin" / "pip") if a.endswith("/bin/pip") else str(wheels) if a == "/wheels" else a
               for a in install]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    stack.config.chmod(0o400)  # mounted read-only
    installed = venv / "bin" / "exmo-proxy"
    port, log_path = free_port(), tmp_path / "image.log"
    env = clean_env(EXMO_PROXY_PASSPHRASE_FILE=str(stack.passphrase_file))
    with log_path.open("ab") as log:
        proc = subprocess.Popen([str(installed), "run", "--config", str(stack.config), "--listen",
                                 f"127.0.0.1:{port}", "--upstream", stack.sim.url, "--state-dir",
                                 str(tmp_path / "state")], stdout=log, stderr=log, env=env)
    try:
        wait_for_port(port, proc, log_path)
        status, body = curl_json(f"http://127.0.0.1:{port}/v1.1/user_info", "-X", "POST")
        assert status == 200 and "balances" in body
        assert str(venv) in Path(f"/proc/{proc.pid}/cmdline").read_text()  # the venv's daemon answered
        assert "loop: uvloop" in log_path.read_text()  # the image ships the faster event loop
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
