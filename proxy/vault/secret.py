"""`Secret`: a secret string that nothing can print by accident.

Its repr and str are redacted and it refuses to be pickled; `reveal()` is the only way to the value.
Account secrets, the passphrase and anything else that must stay out of logs, error messages and
reprs travel in one.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """A secret string whose repr/str never show it; `reveal()` is the only way in."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def encode(self) -> bytes:
        return self._value.encode("utf-8")

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)
