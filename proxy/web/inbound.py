"""A request's parameters: form body, flat JSON object or query string, as one ordered list (SPEC §5).

Whichever way a client sends them, they become one ordered list of (name, value) pairs, later sent
to EXMO as a form body (EXMO refuses query strings on POST, 40038). A client's own `nonce` is
dropped: the daemon owns it. Ambiguous input (a name given twice, nested JSON) is refused rather
than guessed at, because these are trading orders.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from proxy.exmo.refusals import Refusal
from proxy.exmo.signing import Params

DROPPED = frozenset({"nonce", "Key", "Sign"})  # the daemon's own; a library's placeholders go
MAX_FIELDS = 256


class BadRequest(Refusal):
    """The request cannot be understood (400); `slug` says why."""

    status = 400

    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message, slug=slug)


def parse_form(text: str, where: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, errors="strict")`, bounded to MAX_FIELDS fields. Text
    without `%` or `+` decodes to itself, so it is only split (the usual order form)."""
    if "%" not in text and "+" not in text:
        if text.count("&") >= MAX_FIELDS:
            raise BadRequest("too_many_fields", f"the {where} has more than {MAX_FIELDS} fields")
        return [(name, value) for name, _, value in (f.partition("=") for f in text.split("&") if f)]
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest("bad_encoding", f"the {where} is not valid UTF-8 after percent-decoding") from None
    except ValueError:
        raise BadRequest("too_many_fields", f"the {where} has more than {MAX_FIELDS} fields") from None


def _json_value(name: str, value: Any) -> str:
    if isinstance(value, str):  # numbers arrive as their text, see parse_float/parse_int
        return value
    raise BadRequest(
        "bad_json", f"JSON field {name!r} must be a string or a number (a flat object, as EXMO takes forms)"
    )


def _reject_constant(name: str) -> Any:
    raise BadRequest("bad_json", f"JSON constant {name} is not allowed")


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Keep JSON objects as pair lists so a repeated name is refused, not silently overwritten."""
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise BadRequest("duplicate_parameter", f"parameter {dup!r} is given more than once")
    return pairs


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        raise BadRequest("bad_encoding", "the JSON body holds an invalid unicode escape") from None
    return text


def parse_json(raw: bytes) -> list[tuple[str, str]]:
    try:
        # Numbers stay the exact text the client wrote: 0.1 must not become 0.1000000000000000055.
        doc = json.loads(raw, parse_float=str, parse_int=str, parse_constant=_reject_constant,
                         object_pairs_hook=_pairs)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("bad_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("bad_json", "the JSON body is nested too deeply; send a flat object") from None
    if not isinstance(doc, list) or raw.lstrip()[:1] != b"{":
        raise BadRequest("bad_json", "a JSON body must be an object of parameters")
    if len(doc) > MAX_FIELDS:
        raise BadRequest("too_many_fields", f"the body has more than {MAX_FIELDS} fields")
    return [(_utf8(name), _utf8(_json_value(name, value))) for name, value in doc]


def _is_json(content_type: str, raw: bytes) -> bool:
    if content_type == "application/json" or content_type.endswith("+json"):
        return True
    return content_type != "application/x-www-form-urlencoded" and raw.lstrip()[:1] == b"{"


def parse_body(content_type: str, raw: bytes) -> list[tuple[str, str]]:
    if not raw.strip():
        return []
    if _is_json(content_type, raw):
        return parse_json(raw)
    if content_type.startswith("multipart/"):
        raise BadRequest("unsupported_body", "multipart bodies are not supported; send a form or JSON body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("bad_encoding", "the body is not valid UTF-8") from None
    return parse_form(text.strip(), "body")


def merge(*sources: list[tuple[str, str]]) -> Params:
    """One ordered parameter list; a client nonce is dropped, a repeated name refused."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for name, value in (pair for source in sources for pair in source):
        if not name:
            raise BadRequest("bad_parameter", "a parameter has an empty name")
        if name in DROPPED:
            continue
        if name in seen:
            raise BadRequest("duplicate_parameter", f"parameter {name!r} is given more than once")
        seen.add(name)
        out.append((name, value))
    return tuple(out)


def read_params(query: str, content_type: str, body: bytes) -> Params:
    """Parameters from the raw query string and the body (already bounded by limits.max_body_bytes)."""
    return merge(parse_form(query, "query string") if query else [], parse_body(content_type, body))
