"""Process hardening and private-file checks (proxy/hardening.py).

`protect_process` changes the process irreversibly (the hard core limit cannot be raised again), so
it only ever runs in child processes here; the test process is never hardened.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import pwd
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.vault import hardening
from proxy.vault.hardening import PermissionProblem, check_private_file, protect_process

REPO = Path(__file__).resolve().parent.parent
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4

# Run in a child: report dumpability and the core limit before and after protect_process.
PROTECTED_CHILD = f"""
import ctypes, json, logging, resource
from proxy.vault.hardening import protect_process
libc = ctypes.CDLL(None, use_errno=True)
before = libc.prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0)
failed = protect_process(logging.getLogger("child"))
print(json.dumps({{"before": before, "failed": failed, "dumpable": libc.prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0),
                   "core": list(resource.getrlimit(resource.RLIMIT_CORE))}}))
"""

# Become an ordinary user (when started as root, whose CAP_SYS_PTRACE would read anything), then stay
# dumpable like any process the user starts: the kernel clears the flag on setuid (proc(5)). Imports
# come first: that user may not be able to read the Python installation.
BECOME_USER = f"""
import ctypes, logging, os, sys
from proxy.vault.hardening import protect_process
uid = int(sys.argv[1])
if os.geteuid() != uid:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
ctypes.CDLL(None, use_errno=True).prctl({PR_SET_DUMPABLE}, 1, 0, 0, 0)
"""

TARGET = BECOME_USER + """
if sys.argv[2] == "protect":
    assert protect_process(logging.getLogger("target")) == []
print("ready", flush=True)
sys.stdin.read()
"""

READER = BECOME_USER + """
try:
    with open(f"/proc/{sys.argv[2]}/environ", "rb") as f:
        f.read()
    print("read")
except PermissionError:
    print("denied")
"""


def run_child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=30, check=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux")
def test_protect_process_disables_core_files_and_dumping() -> None:
    """In a fresh process: dumpable before, then not dumpable, RLIMIT_CORE 0/0, nothing reported."""
    result = run_child(PROTECTED_CHILD)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report == {"before": 1, "failed": [], "dumpable": 0, "core": [0, 0]}
    assert "hardening" not in result.stderr


def _same_user() -> int:
    if os.geteuid() != 0:
        return os.geteuid()
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def _reader_verdict(protect: bool) -> str:
    """What another process of the same user gets when it reads the target's /proc/PID/environ."""
    uid = str(_same_user())
    target = subprocess.Popen([sys.executable, "-c", TARGET, uid, "protect" if protect else "plain"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert target.stdout is not None
        line = target.stdout.readline()
        if line != "ready\n":
            target.kill()
            raise AssertionError(f"target did not start: {line!r} {target.communicate()[1]}")
        reader = run_child(READER, uid, str(target.pid))
        assert reader.returncode == 0, reader.stderr
        return reader.stdout.strip()
    finally:
        target.kill()
        target.communicate()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux")
def test_same_user_cannot_read_a_protected_process() -> None:
    """Another process of the same user reads /proc/PID/environ of a plain process, not a protected one."""
    assert _reader_verdict(protect=False) == "read"  # control: the test really exercises the protection
    assert _reader_verdict(protect=True) == "denied"


class _FailingPrctl:
    def prctl(self, *args: int) -> int:
        ctypes.set_errno(errno.EPERM)
        return -1


class _NoPrctl:
    """A libc without prctl, as on macOS."""


@pytest.mark.parametrize("libc", [pytest.param(_FailingPrctl(), id="prctl-fails"),
                                  pytest.param(_NoPrctl(), id="no-prctl")])
def test_unavailable_protections_are_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, libc: object,
) -> None:
    """Both protections failing: their names are returned and one warning line names them."""
    def refuse(*args: Any) -> None:
        raise ValueError("not allowed to raise maximum limit")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: libc)
    with caplog.at_level(logging.WARNING):
        failed = protect_process(logging.getLogger("test.hardening"))
    assert failed == ["RLIMIT_CORE=0", "PR_SET_DUMPABLE=0"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "\n" not in record.getMessage()
    assert "RLIMIT_CORE=0" in record.getMessage() and "PR_SET_DUMPABLE=0" in record.getMessage()


def test_nothing_is_logged_when_everything_applies(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A clean start says nothing (the real calls are stubbed: this process must stay as it is)."""
    calls: list[tuple[Any, ...]] = []

    class Libc:
        def prctl(self, *args: int) -> int:
            calls.append(args)
            return 0

    monkeypatch.setattr(resource, "setrlimit", lambda *args: calls.append(args))
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: Libc())
    with caplog.at_level(logging.DEBUG):
        assert protect_process(logging.getLogger("test.hardening")) == []
    assert not caplog.records
    assert calls == [(resource.RLIMIT_CORE, (0, 0)), (PR_SET_DUMPABLE, 0, 0, 0, 0)]


def _file(path: Path, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("secret\n")
    path.chmod(mode)
    return path


def _no_warning(message: str) -> None:
    raise AssertionError(f"unexpected warning: {message}")


@pytest.mark.parametrize("mode", [pytest.param(0o600, id="0600"), pytest.param(0o400, id="0400"),
                                  pytest.param(0o700, id="0700-owner-exec")])
def test_private_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    """Modes that give group and others nothing pass silently."""
    check_private_file(_file(tmp_path / "passphrase", mode), "passphrase file", warn=_no_warning)


@pytest.mark.parametrize("mode", [
    pytest.param(0o640, id="0640"), pytest.param(0o644, id="0644"), pytest.param(0o604, id="0604"),
    pytest.param(0o660, id="0660"), pytest.param(0o610, id="0610-group-exec"),
    pytest.param(0o602, id="0602-world-writable"),
])
def test_open_modes_are_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    """Any group/other bit is refused; the one-line message names the file, its mode and the chmod."""
    path = _file(tmp_path / "passphrase", mode)
    with pytest.raises(PermissionProblem) as info:
        check_private_file(path, "passphrase file", warn=_no_warning)
    message = str(info.value)
    assert f"passphrase file {path}" in message
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert "\n" not in message


@pytest.mark.parametrize("mode", [0o444, 0o440, 0o644])
def test_mounted_secrets_only_warn(tmp_path: Path, mode: int) -> None:
    """Under a lenient dir (Docker/Kubernetes secrets) an open mode is one warning, not a refusal."""
    secrets_dir = tmp_path / "run-secrets"
    path = _file(secrets_dir / "exmo-proxy-passphrase", mode)
    warnings: list[str] = []
    check_private_file(path, "passphrase file", lenient_dirs=(secrets_dir,), warn=warnings.append)
    [warning] = warnings
    assert str(path) in warning and f"{mode:04o}" in warning and "\n" not in warning


def test_private_file_in_a_lenient_dir_is_silent(tmp_path: Path) -> None:
    """A 0600 mounted secret gives no warning."""
    path = _file(tmp_path / "run-secrets" / "p", 0o600)
    check_private_file(path, "passphrase file", lenient_dirs=(path.parent,), warn=_no_warning)


def test_default_lenient_dir_is_run_secrets_only(tmp_path: Path) -> None:
    """Without lenient_dirs, an ordinary directory is strict (the default names only /run/secrets)."""
    default = hardening.LENIENT_DIRS
    assert default == (Path("/run/secrets"),)
    with pytest.raises(PermissionProblem):
        check_private_file(_file(tmp_path / "p", 0o444), "passphrase file", warn=_no_warning)


def test_symlink_into_a_lenient_dir_does_not_borrow_its_leniency(tmp_path: Path) -> None:
    """A link placed in the secrets dir that points at an ordinary open file is still refused."""
    target = _file(tmp_path / "home" / "passphrase", 0o644)
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir()
    link = secrets_dir / "exmo-proxy-passphrase"
    link.symlink_to(target)
    with pytest.raises(PermissionProblem, match="0644"):
        check_private_file(link, "passphrase file", lenient_dirs=(secrets_dir,), warn=_no_warning)


def test_kubernetes_style_links_inside_the_mount_stay_lenient(tmp_path: Path) -> None:
    """Kubernetes mounts `name -> ..data/name` inside the secret dir: that still counts as mounted."""
    secrets_dir = tmp_path / "secret-volume"
    real = _file(secrets_dir / "..2026_01_01" / "passphrase", 0o444)
    (secrets_dir / "..data").symlink_to(real.parent.name)
    (secrets_dir / "passphrase").symlink_to(Path("..data") / "passphrase")
    warnings: list[str] = []
    check_private_file(secrets_dir / "passphrase", "passphrase file", lenient_dirs=(secrets_dir,),
                       warn=warnings.append)
    assert len(warnings) == 1


def test_the_mode_checked_is_the_targets(tmp_path: Path) -> None:
    """A symlink's own 0777 does not matter; the private file it points to passes."""
    target = _file(tmp_path / "passphrase", 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    check_private_file(link, "passphrase file", warn=_no_warning)


def test_missing_file_raises_the_os_error(tmp_path: Path) -> None:
    """A file that is not there is the caller's usual read error, not a permission problem."""
    with pytest.raises(FileNotFoundError):
        check_private_file(tmp_path / "absent", "passphrase file", warn=_no_warning)
