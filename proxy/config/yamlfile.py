"""The config file as YAML text: strict parsing, and edits that keep the user's comments and order.

PyYAML cannot round-trip comments, so editing commands change the text itself: they find the block
of a dotted key (block-style YAML, as `init` writes and people edit), replace, insert or delete its
lines, then re-parse the result and check that it says exactly what was intended. When the file
uses a style these edits do not understand (flow mappings, anchors), the caller falls back to a
plain re-dump and says that comments were not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from proxy.config.checks import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys (a second `secret:` must not silently win)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError(f"{where}: invalid YAML{line}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of keys")
    return doc


def read_document(path: Path) -> dict[str, Any]:
    return parse_yaml(load_text(path), str(path))


@dataclass(frozen=True)
class Span:
    """Lines [start, end) of a key's block; `indent` is the key line's indentation."""

    start: int
    end: int
    indent: int


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _key_pattern(name: str) -> re.Pattern[str]:
    quoted = re.escape(name)
    return re.compile(rf"^( *)(?:{quoted}|'{quoted}'|\"{quoted}\")\s*:(?:\s|$)")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    end = start + 1
    last_content = start
    while end < len(lines):
        line = lines[end]
        if _is_content(line):
            if _indent(line) <= indent:
                break
            last_content = end
        end += 1
    return last_content + 1  # trailing blanks and comments belong to what follows


def find_block(lines: list[str], path: tuple[str, ...]) -> Span | None:
    """The span of the block-style key at `path`, or None when it is not there."""
    lo, hi, want = 0, len(lines), 0
    span: Span | None = None
    for name in path:
        pattern = _key_pattern(name)
        span = None
        for i in range(lo, hi):
            match = pattern.match(lines[i])
            if match and len(match.group(1)) == want and _is_content(lines[i]):
                span = Span(i, _block_end(lines, i, want), want)
                break
        if span is None:
            return None
        children = [ln for ln in lines[span.start + 1 : span.end] if _is_content(ln)]
        lo, hi = span.start + 1, span.end
        want = _indent(children[0]) if children else want + 2
    return span


def child_indent(lines: list[str], span: Span) -> int:
    children = [ln for ln in lines[span.start + 1 : span.end] if _is_content(ln)]
    return _indent(children[0]) if children else span.indent + 2


def replace_block(text: str, path: tuple[str, ...], new_lines: list[str]) -> str | None:
    """Replace the key line and its children at `path` by `new_lines` (already indented)."""
    lines = text.splitlines()
    span = find_block(lines, path)
    if span is None:
        return None
    return _join(lines[: span.start] + new_lines + lines[span.end :])


def delete_block(text: str, path: tuple[str, ...]) -> str | None:
    return replace_block(text, path, [])


def append_child(text: str, path: tuple[str, ...], child: list[str]) -> str | None:
    """Add `child` (lines indented relative to 0) at the end of the mapping at `path`."""
    lines = text.splitlines()
    span = find_block(lines, path)
    if span is None:
        return None
    head = lines[span.start]
    if not re.match(r"^[^#]*:\s*(#.*)?$", head):  # `accounts: {}` or a flow mapping on the line
        if not re.match(r"^[^#]*:\s*\{\s*\}\s*(#.*)?$", head):
            return None
        lines[span.start] = head[: head.index(":") + 1]
    pad = " " * child_indent(lines, span)
    return _join(lines[: span.end] + [pad + ln for ln in child] + lines[span.end :])


def insert_top_level(text: str, line: str) -> str:
    """Put a new top-level `key: value` line before the first top-level key."""
    lines = text.splitlines()
    at = next((i for i, ln in enumerate(lines) if _is_content(ln) and _indent(ln) == 0), len(lines))
    return _join([*lines[:at], line, *lines[at:]])


def insert_block_before(text: str, key: str, block: list[str]) -> str:
    """Put a new top-level block before top-level `key` (at the end when `key` is absent)."""
    lines = text.splitlines()
    span = find_block(lines, (key,))
    at = span.start if span else len(lines)
    return _join([*lines[:at], *block, *lines[at:]])


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=200)


def verified_edit(new_text: str | None, expected: dict[str, Any]) -> tuple[str, bool]:
    """`new_text` if it parses to `expected`, else a plain dump; the flag says comments survived."""
    if new_text is not None:
        try:
            if parse_yaml(new_text, "edited config") == expected:
                return new_text, True
        except ConfigError:
            pass
    return dump(expected), False


def load_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (create one with `exmo-proxy init`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
