"""Reading the audit log for `exmo-proxy audit tail|grep`: oldest first across rotated files.

A torn or invalid line (see log.py on kill -9 and power loss) is skipped, never an error.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from proxy.audit.log import FILE_NAME, rotated_path


def _files(state_dir: Path, include_rotated: bool) -> list[Path]:
    """Oldest first: the highest-numbered rotated file, ..., audit.jsonl.1, audit.jsonl."""
    path = state_dir / FILE_NAME
    numbers = [p.name[len(FILE_NAME) + 1:] for p in state_dir.glob(FILE_NAME + ".*")]
    rotated = sorted((int(n) for n in numbers if n.isdigit()), reverse=True) if include_rotated else []
    return [rotated_path(path, n) for n in rotated] + [path]


def _lines(path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as file:
        for line in file:
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a torn or damaged line: skipped, never fatal for a reader
            if isinstance(entry, dict):
                yield line, entry


def iter_entries(state_dir: Path, *, include_rotated: bool = True) -> Iterator[dict[str, Any]]:
    for path in _files(state_dir, include_rotated):
        for _, entry in _lines(path):
            yield entry


def tail(state_dir: Path, n: int = 20) -> list[dict[str, Any]]:
    """The last `n` entries, oldest first; older files are read only if the newer ones hold fewer."""
    found: list[dict[str, Any]] = []
    for path in reversed(_files(state_dir, include_rotated=True)):
        if len(found) >= n:
            break
        last = collections.deque((entry for _, entry in _lines(path)), maxlen=n - len(found))
        found = list(last) + found
    return found


def grep(state_dir: Path, *, account: str | None = None, method: str | None = None,
         client: str | None = None, text: str | None = None, since: str | None = None,
         ) -> Iterator[dict[str, Any]]:
    """Entries matching every filter given; `since` is an ISO prefix such as 2026-11-24 or ...T03:57."""
    wanted = {"account": account, "method": method, "client": client}
    for path in _files(state_dir, include_rotated=True):
        for line, entry in _lines(path):
            if any(value is not None and entry.get(key) != value for key, value in wanted.items()):
                continue
            if text is not None and text not in line.decode(errors="replace"):
                continue
            if since is not None and str(entry.get("time", "")) < since:
                continue
            yield entry


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if text and not any(c.isspace() for c in text) else json.dumps(text, ensure_ascii=False)


def format_entry(entry: Mapping[str, Any]) -> str:
    """One human line: time account client method outcome http=… exmo=… nonce=… latency, then k=v."""
    result = entry.get("exmo_result")
    exmo = entry.get("exmo_error_code") or ("ok" if result is True else "error" if result is False else "-")
    params = entry.get("params")
    pairs = params.items() if isinstance(params, dict) else ()
    fields = [entry.get("time"), entry.get("account"), entry.get("client"), entry.get("method"),
              entry.get("outcome"), f"http={_shown(entry.get('http_status'))}", f"exmo={_shown(exmo)}",
              f"nonce={_shown(entry.get('nonce'))}", f"{_shown(entry.get('latency_ms'))}ms"]
    return " ".join([_shown(f) for f in fields] + [f"{k}={_shown(v)}" for k, v in pairs])
