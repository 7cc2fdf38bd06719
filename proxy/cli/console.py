"""Where the CLI's credentials come from and where its messages go: a terminal, or piped lines.

The API key is read with echo (it is the public half), the secret never: getpass on a terminal, or
the next stdin line with --from-stdin. Tests swap the callables.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from proxy.config.checks import ConfigError
from proxy.vault.secret import Secret

Out = Callable[[str], None]


@dataclass
class Console:
    """Where credentials come from and where messages go (tests swap these)."""

    from_stdin: bool = False
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    ask: Callable[[str], str] = input
    ask_secret: Callable[[str], str] = getpass.getpass
    out: Out = print
    warn: Out = field(default=lambda line: print(line, file=sys.stderr))

    def _line(self, what: str) -> str:
        line = self.stdin.readline()
        if not line:
            raise ConfigError(f"--from-stdin: expected the {what} on its own line, got end of input")
        return line.rstrip("\r\n").strip()

    def read_key(self) -> str:
        if self.from_stdin:
            return self._line("API key")
        self._need_tty()
        return self._prompt(self.ask, "EXMO API key (K-...): ")

    def read_secret(self) -> Secret:
        value = self._line("API secret") if self.from_stdin else self._ask_secret()
        if not value or any(c.isspace() for c in value):
            raise ConfigError("the API secret is empty or contains spaces")
        if value.startswith("K-"):
            raise ConfigError("API secret: that looks like the public key (K-...); the secret starts with S-")
        if not value.startswith("S-"):
            self.warn("warning: the secret does not start with S- as EXMO secrets do; stored anyway")
        return Secret(value)

    def read_hidden(self, what: str) -> Secret:
        """Another secret (the Redis password): never echoed, must not be empty."""
        if self.from_stdin:
            value = self._line(what)
        else:
            self._need_tty()
            value = self._prompt(self.ask_secret, f"{what} (not echoed): ")
        if not value:
            raise ConfigError(f"the {what} is empty; nothing was written")
        return Secret(value)

    def _ask_secret(self) -> str:
        self._need_tty()
        return self._prompt(self.ask_secret, "EXMO API secret (S-..., not echoed): ")

    @staticmethod
    def _prompt(ask: Callable[[str], str], text: str) -> str:
        try:
            return ask(text).strip()
        except EOFError:
            raise ConfigError("input ended at the prompt; nothing was written") from None

    def _need_tty(self) -> None:
        if not self.stdin.isatty():
            raise ConfigError("stdin is not a terminal: pass --from-stdin and pipe the key and secret lines")


