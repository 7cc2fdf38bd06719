"""Where the passphrase comes from (SPEC §3), in the documented order.

It is never taken from argv or from an environment value (only a *path* may come from the
environment); a passphrase file must be private to its owner (hardening.py).
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from proxy.vault.hardening import PermissionProblem, check_private_file
from proxy.vault.secret import Secret

PASSPHRASE_ENV = "EXMO_PROXY_PASSPHRASE_FILE"  # noqa: S105 - the name of a variable holding a path
CREDENTIAL_NAME = "exmo-proxy-passphrase"
DOCKER_SECRET = Path("/run/secrets") / CREDENTIAL_NAME
MIN_PASSPHRASE = 8

log = logging.getLogger(__name__)


class PassphraseError(Exception):
    """No usable passphrase source; the message lists what was tried (exit 2)."""


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def read_passphrase_file(path: Path, origin: str) -> Secret:
    try:
        check_private_file(path, f"{origin} passphrase file", warn=log.warning)
        text = path.read_bytes().decode("utf-8")  # bytes: keep every \r the user wrote
    except PermissionProblem as exc:
        raise PassphraseError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PassphraseError(f"{origin} {path}: cannot read: {_reason(exc)}") from None
    value = _strip_newline(text)
    if not value:
        raise PassphraseError(f"{origin} {path}: the file is empty")
    return Secret(value)


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


@dataclass
class PassphraseSources:
    """The lookup order of SPEC §3; `explicit` is --passphrase-file."""

    explicit: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    docker_secret: Path = DOCKER_SECRET
    is_tty: Callable[[], bool] = field(default=lambda: sys.stdin.isatty())
    prompt: Callable[[str], str] = field(default=getpass.getpass)

    def get(self, purpose: str = "Passphrase: ") -> Secret:
        if self.explicit:
            return read_passphrase_file(Path(self.explicit), "--passphrase-file")
        if self.env.get(PASSPHRASE_ENV):
            return read_passphrase_file(Path(self.env[PASSPHRASE_ENV]), PASSPHRASE_ENV)
        tried = ["--passphrase-file: not given", f"{PASSPHRASE_ENV}: not set"]
        creds = self.env.get("CREDENTIALS_DIRECTORY")
        if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
            return read_passphrase_file(Path(creds) / CREDENTIAL_NAME, "systemd credential")
        tried.append(
            f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}: "
            + ("no such file" if creds else "CREDENTIALS_DIRECTORY not set")
        )
        if self.docker_secret.is_file():
            return read_passphrase_file(self.docker_secret, "secret file")
        tried.append(f"{self.docker_secret}: no such file")
        if self.is_tty():
            return self._ask(purpose)
        tried.append("prompt: stdin is not a terminal")
        raise PassphraseError("no passphrase: tried " + "; ".join(tried))

    def _ask(self, purpose: str) -> Secret:
        value = self.prompt(purpose)
        if not value:
            raise PassphraseError("empty passphrase")
        return Secret(value)

    def new(self) -> Secret:
        """A new passphrase (init): from the sources when not interactive, else asked twice."""
        if self.explicit or self.env.get(PASSPHRASE_ENV) or not self.is_tty():
            value = self.get()
        else:
            value = self._ask_twice()
        check_new_passphrase(value)
        return value

    def replacement(self, new_file: str | None) -> Secret:
        """The new passphrase of `passphrase change`: only from `new_file` or asked twice on a terminal.

        Never from the usual sources, which hold the *current* passphrase."""
        if new_file:
            value = read_passphrase_file(Path(new_file), "--new-passphrase-file")
        elif self.is_tty():
            value = self._ask_twice()
        else:
            raise PassphraseError("no new passphrase: give --new-passphrase-file PATH, or run on a terminal")
        check_new_passphrase(value)
        return value

    def _ask_twice(self) -> Secret:
        value = Secret(self.prompt("New passphrase: "))
        if self.prompt("Repeat passphrase: ") != value.reveal():
            raise PassphraseError("the two passphrases differ")
        return value


def check_new_passphrase(value: Secret) -> None:
    if len(value.reveal()) < MIN_PASSPHRASE:
        raise PassphraseError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
