"""How the daemon says no: one exception shape, answered in EXMO's error shape (SPEC §5).

Every refusal the daemon answers is a `Refusal` carrying the same two attributes, an HTTP `status` and
a machine-readable `slug`, so one place (web/errors.py) maps them all. The answer is what EXMO itself
sends on failure, `{"result": false, "error": "..."}`, so a bot that checks `result` sees it, plus
`proxy_error: <slug>` so a bot can tell our refusals from EXMO's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Refusal(Exception):
    """A request the daemon refuses or could not complete; `status` and `slug` say which."""

    status: int = 500
    slug: str = "internal"

    def __init__(self, message: str, *, status: int | None = None, slug: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers the answer carries besides the body (Retry-After, WWW-Authenticate)."""
        return NO_HEADERS

    def explain(self) -> str:
        """The text the client reads; by default the exception's own message."""
        return str(self)


def error_body(slug: str, message: str) -> dict[str, Any]:
    """EXMO's failure shape, marked as the daemon's own."""
    return {"result": False, "error": f"proxy: {message}", "proxy_error": slug}
