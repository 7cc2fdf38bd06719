"""The daemon's secrets are decrypted in a short-lived child process, not in the daemon itself.

Why: Argon2id takes 64 MiB for a moment and `cryptography` ~7 MiB of libraries for good; in a child,
neither stays in the long-running daemon (bench/RESULTS.md has the RSS), and the unlock runs on another
core while the daemon imports its server code, which shortens the cold start. `exmo-proxy check` and the
management commands still decrypt in-process (encryption.py): they exit right after.

The passphrase goes to the child on its stdin and the decrypted values come back on its stdout: pipes,
never argv, the environment or a file. The child runs in isolated mode (`-I`: no PYTHON* variables, no
user site, not the working directory on its path) with an empty environment, from `/`, and imports
this very package by its path: a `proxy/` planted in a writable working directory cannot receive the
passphrase. It hardens itself first (no core dumps, not dumpable) and answers with one JSON object:
`{"values": {path: plaintext}}`, or `{"error": kind, ...}`, which `Unsealing.result()` raises as the
same exception the in-process path would.
"""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proxy.vault import encryption

log = logging.getLogger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory this `proxy` package is in
TIMEOUT_S = 120  # Argon2id within the config's bounds takes seconds at most; a stuck child is killed


class Unsealing:
    """A running child decrypting `values` (path -> `enc:v1:` text); `result()` waits for it."""

    def __init__(self, kdf: encryption.KdfParams, wrapped_key: str, values: Mapping[str, str],
                 passphrase: str) -> None:
        request = {"passphrase": passphrase, "wrapped_key": wrapped_key, "values": dict(values),
                   "kdf": {"salt": encryption.b64encode(kdf.salt), "m": kdf.m, "t": kdf.t, "p": kdf.p}}
        child = (f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r});"
                 " import proxy.vault.unseal as u; u.main()")
        self._proc = subprocess.Popen(  # noqa: S603 - this interpreter, running this package's own code
            [sys.executable, "-I", "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, close_fds=True, cwd="/", env={},
        )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request).encode())
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start; result() reports what it said
        self._proc.stdin = None  # sent and closed: communicate() only reads

    def result(self) -> dict[str, str]:
        try:
            out, err = self._proc.communicate(timeout=TIMEOUT_S)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # The timed wait sleeps between polls, and a clock that refuses the sleep (EINVAL: seen
            # under libfaketime, the tests' clock-stepped daemon) would abort the start. Go on reading
            # (nothing read is lost, as after a timeout) and wait without a timeout: the child is ours
            # and ends when its one answer is written.
            out, err = self._proc.communicate()
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise encryption.FormatError(f"cannot decrypt the config: the unlock process took longer than"
                                    f" {TIMEOUT_S}s and was stopped") from None
        try:
            answer: Any = json.loads(out) if self._proc.returncode == 0 else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or [
                f"exit status {self._proc.returncode}"]
            raise encryption.FormatError(
                f"cannot decrypt the config: the unlock process failed ({detail[0]})")
        if "values" in answer:
            return dict(answer["values"])
        if answer.get("error") == "unlock":
            raise encryption.UnlockError(answer["message"])
        if answer.get("error") == "value":
            raise encryption.ValueAuthError(answer["path"])
        raise encryption.FormatError(answer.get("message", "cannot decrypt the config"))


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    try:
        kdf = request["kdf"]
        salt = encryption.b64decode(kdf["salt"], "encryption.kdf.salt")
        params = encryption.KdfParams(salt=salt, m=kdf["m"], t=kdf["t"], p=kdf["p"])
        data_key = encryption.unwrap_data_key(request["wrapped_key"], request["passphrase"].encode(), params)
        return {"values": {path: encryption.decrypt_value(data_key, path, text)
                           for path, text in request["values"].items()}}
    except encryption.UnlockError as exc:
        return {"error": "unlock", "message": str(exc)}
    except encryption.ValueAuthError as exc:
        return {"error": "value", "path": exc.path}
    except encryption.FormatError as exc:
        return {"error": "format", "message": str(exc)}
    except Exception as exc:  # e.g. a passphrase that is not valid UTF-8: its text names a character
        return {"error": "format", "message": f"cannot decrypt the config ({type(exc).__name__})"}


def main() -> None:
    """The child: started only by `Unsealing`."""
    from proxy.vault.hardening import protect_process

    protect_process(log)  # exec made this process dumpable again: undo that before decrypting
    answer = _answer(json.loads(sys.stdin.buffer.read()))
    sys.stdout.write(json.dumps(answer))
