"""Process and file hardening at start-up: no core dumps, no same-user memory reads, private files.

Once the daemon has decrypted an account secret, that secret sits in its memory for as long as it
runs. `protect_process` closes the two cheap ways to copy it out (a core file, another process of the
same user reading our memory); `check_private_file` refuses a passphrase or config file that other
users can read or change. Both are best effort by design: they narrow the exposure of a secret that
must stay usable, they do not make the process a vault (SPEC §6).
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

# <linux/prctl.h>; prctl(2): "PR_SET_DUMPABLE (since Linux 2.3.20)".
PR_SET_DUMPABLE = 4
PRIVATE_BITS = 0o077  # any group or other permission bit
LENIENT_DIRS = (Path("/run/secrets"),)


def _no_core_files() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the hard limit too: nothing can raise it again


def _not_dumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = getattr(libc, "prctl", None)  # Linux only; elsewhere the protection is reported as missing
    if prctl is None:
        raise OSError("prctl() is not available on this system")
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


_PROTECTIONS: tuple[tuple[str, Callable[[], None]], ...] = (
    ("RLIMIT_CORE=0", _no_core_files),
    ("PR_SET_DUMPABLE=0", _not_dumpable),
)


def protect_process(log: logging.Logger) -> list[str]:
    """Make this process keep its memory to itself; return the protections that could not be applied.

    Call it before the secret is decrypted. It never raises: a missing protection is logged as one
    warning line and the daemon still starts.

    What it buys: with RLIMIT_CORE at 0 (soft and hard) a crash writes no core file holding the
    decrypted secret; a non-dumpable process is not dumped (with the default fs.suid_dumpable=0) even
    when `core_pattern` pipes cores to a helper that ignores RLIMIT_CORE; and other processes of the
    *same* user can no longer ptrace it or read `/proc/PID/mem`, `/proc/PID/environ` and the like,
    because the kernel then requires CAP_SYS_PTRACE for that (ptrace(2), "dumpable" in proc(5)).

    What it does not: root, or anything holding CAP_SYS_PTRACE, can still read our memory; a process
    that ran as this user before the call (a debugger that started the daemon, an LD_PRELOAD library)
    already had its chance; memory can still be written to swap or a hibernation image; and the same
    user can still read the passphrase file and the encrypted config, which is why those must be
    private files and why the passphrase is the real key.
    """
    failed: dict[str, str] = {}
    for name, apply in _PROTECTIONS:
        try:
            apply()
        except Exception as exc:  # best effort: a missing protection must never stop the daemon
            failed[name] = str(exc) or type(exc).__name__
    if failed:
        log.warning("process hardening incomplete, not applied: %s",
                    "; ".join(f"{name} ({why})" for name, why in failed.items()))
    return list(failed)


class PermissionProblem(Exception):
    """A file that must be private is open to other users; the message says how to fix it."""


def _under(path: Path, dirs: Sequence[Path]) -> bool:
    # Compare resolved paths: a symlink placed in a lenient dir must not make an ordinary file lenient,
    # while Kubernetes' `..data/` links stay inside the mount and still count.
    real = path.resolve()
    return any(real.is_relative_to(d.resolve()) for d in dirs)


def check_private_file(path: Path, what: str, *, lenient_dirs: Sequence[Path] = LENIENT_DIRS,
                       warn: Callable[[str], None]) -> None:
    """Raise PermissionProblem if group or others have any permission on `path` (after symlinks).

    Under a `lenient_dirs` entry the problem is passed to `warn` instead: Docker and Kubernetes mount
    secrets 0444 or 0440 and the user cannot change that. An unreadable or missing file raises the
    OSError of `stat`, as reading it would.
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & PRIVATE_BITS:
        return
    problem = f"{what} {path} is open to other users (mode {mode:04o})"
    if _under(path, lenient_dirs):
        warn(f"{problem}; accepted because it is a mounted secret that the user cannot chmod")
        return
    raise PermissionProblem(f"{problem}; make it private with: chmod 600 {path}")
